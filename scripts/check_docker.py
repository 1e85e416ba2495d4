#!/usr/bin/env python3
"""scripts/check_docker.py -- runs the Dockerfile where docker cannot run: each stage in a fresh
Debian 12 root made with mmdebstrap (FROM debian:bookworm -> variant apt, *-slim -> minbase),
WORKDIR/COPY emulated (COPY . honours .dockerignore; COPY --from copies from that stage's root),
and every RUN executed in the root with /bin/sh -c, as docker's shell form does. Then the final
image's CMD is checked: `clipkit serve` on an index built inside it answers /healthz.
Needs root, mmdebstrap and the Debian mirror; takes a while (the build stage compiles clipkit).
Usage: sudo scripts/check_docker.py [--keep DIR]"""
import fnmatch
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def instructions(path):
    """[(KEYWORD, argument string)] with line continuations joined and comments dropped."""
    out, cur = [], ""
    for line in open(path):
        s = line.rstrip("\n")
        if not cur and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if s.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        kw, _, arg = cur.strip().partition(" ")
        out.append((kw.upper(), arg.strip()))
        cur = ""
    return out


def ignored(rel, patterns):
    return any(fnmatch.fnmatch(rel, p.rstrip("/")) or fnmatch.fnmatch(rel.split("/")[0], p.rstrip("/"))
               or ("**/" in p and fnmatch.fnmatch(os.path.basename(rel), p.split("**/")[-1].rstrip("/")))
               for p in patterns)


def copy_context(dst):
    patterns = [l.strip() for l in open(os.path.join(ROOT, ".dockerignore")) if l.strip() and not l.startswith("#")]
    for base, dirs, files in os.walk(ROOT):
        rel_base = os.path.relpath(base, ROOT)
        dirs[:] = [d for d in dirs if not ignored(os.path.normpath(os.path.join(rel_base, d)), patterns)]
        for f in files:
            rel = os.path.normpath(os.path.join(rel_base, f))
            if ignored(rel, patterns):
                continue
            os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(dst, rel), follow_symlinks=False)


def run(cmd, **kw):
    print("+", cmd if isinstance(cmd, str) else " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def main():
    work = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else tempfile.mkdtemp(prefix="ck-docker-")
    stages, root, workdir, t0, mounted = {}, None, "/", time.time(), []
    try:
        build(stages, work, t0, mounted)
    finally:
        for m in mounted:
            subprocess.run(["umount", m])
    if "--keep" not in sys.argv:
        shutil.rmtree(work)


def build(stages, work, t0, mounted):
    root, workdir = None, "/"
    for kw, arg in instructions(os.path.join(ROOT, "Dockerfile")):
        if kw == "FROM":
            image, _, name = arg.partition(" AS ")
            root = os.path.join(work, name.strip() or "final")
            if os.path.exists(root):
                shutil.rmtree(root)
            variant = "minbase" if image.endswith("-slim") else "apt"
            run(["mmdebstrap", "--quiet", "--variant=" + variant, "--include=ca-certificates", "bookworm", root])
            run(["mount", "-t", "proc", "proc", root + "/proc"])  # as docker gives a container
            mounted.append(root + "/proc")
            stages[name.strip()] = root
            workdir = "/"
        elif kw == "WORKDIR":
            workdir = arg
            os.makedirs(root + arg, exist_ok=True)
        elif kw == "COPY":
            parts = shlex.split(arg)
            src_root = ROOT
            if parts[0].startswith("--from="):
                src_root = stages[parts[0].split("=", 1)[1]]
                parts = parts[1:]
            *srcs, dst = parts
            dst_abs = root + (dst if dst.startswith("/") else os.path.join(workdir, dst))
            for s in srcs:
                if s == "." and src_root == ROOT:
                    copy_context(dst_abs)
                elif src_root == ROOT:
                    os.makedirs(dst_abs if dst.endswith("/") else os.path.dirname(dst_abs), exist_ok=True)
                    shutil.copy2(os.path.join(ROOT, s), dst_abs)
                else:
                    os.makedirs(os.path.dirname(dst_abs), exist_ok=True)
                    shutil.copy2(src_root + s, dst_abs)
        elif kw == "RUN":
            run(["chroot", root, "/bin/sh", "-c", "cd " + shlex.quote(workdir) + " && " + arg])
        elif kw in ("VOLUME", "EXPOSE", "ENTRYPOINT", "CMD", "ENV", "LABEL"):
            print(f"  ({kw} {arg}: checked below)" if kw == "CMD" else f"  ({kw} {arg})")
        else:
            sys.exit(f"check_docker: unhandled instruction {kw}")
    # The final image: build a small index with the installed clipkit and serve it as CMD does.
    shutil.copytree(os.path.join(ROOT, "tests/data/models/tiny-clip"), root + "/tmp/model")
    shutil.copytree(os.path.join(ROOT, "tests/data/datasets/coco-tiny/val2017"), root + "/tmp/photos")
    run(["chroot", root, "clipkit", "index", "build", "--model", "/tmp/model", "--folder", "/tmp/photos", "--index", "/index"],
        stdout=subprocess.DEVNULL)
    serve = subprocess.Popen(["chroot", root, "clipkit", "serve", "--index", "/index", "--host", "127.0.0.1", "--port", "0"],
                             stdout=subprocess.PIPE, text=True)
    line = serve.stdout.readline().strip()  # "listening on http://127.0.0.1:PORT/"
    port = int(line.rstrip("/").rsplit(":", 1)[1])
    import urllib.request
    health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read().decode()
    serve.terminate()
    serve.wait()
    print(f"check_docker: every instruction ran; the image serves: {health} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
