# The web page end to end in headless Chromium (label "browser"). run_browser_test.sh installs
# playwright-core into tests/browser/node_modules (git-ignored) and exits 77 = skipped only when
# chromium is truly not installable.
add_test(NAME browser.web_page
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/browser/run_browser_test.sh $<TARGET_FILE:clipkit> ${PROJECT_SOURCE_DIR}/tests/data)
set_tests_properties(browser.web_page PROPERTIES LABELS "browser" SKIP_RETURN_CODE 77 TIMEOUT 300)
