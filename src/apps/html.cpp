#include "apps/html.h"

namespace clipkit::apps {

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string html_head(const std::string& title) {
  return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
         "</title>\n<style>body{font-family:sans-serif;margin:1.5em;background:#fafafa}"
         ".group{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0.8em 0;padding:0.6em}"
         ".meta{color:#555;font-size:90%;margin-bottom:0.4em}figure{display:inline-block;margin:0.3em;"
         "vertical-align:top;max-width:180px;font-size:75%;word-break:break-all}figure img{display:block;"
         "max-width:160px;max-height:160px}figure.keep{outline:3px solid #2a2}figure.remove{outline:3px solid "
         "#d44}.err{color:#d44}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
         "</style></head><body>\n";
}

}  // namespace clipkit::apps
