# bench/gpu_check.sh's parts, checked without a GPU (label gpu_scripts): the clipkit-side hook and
# the report on synthetic rows, clipkit's rows on the cpu, and hf_side.py --smoke on the CPU (skipped where python3 has no torch).
add_test(NAME gpu_scripts.hook_and_report COMMAND ${CMAKE_CURRENT_LIST_DIR}/gpu_scripts_test.sh hook $<TARGET_FILE:clipkit>)
add_test(NAME gpu_scripts.hf_side_smoke COMMAND ${CMAKE_CURRENT_LIST_DIR}/gpu_scripts_test.sh hf)
# clipkit's rows (bench/gpu/clipkit_side.py) on the cpu with the tiny fixtures: their commands and the
# parity arithmetic, so a broken row fails here
add_test(NAME gpu_scripts.clipkit_rows COMMAND ${CMAKE_CURRENT_LIST_DIR}/gpu_scripts_test.sh rows $<TARGET_FILE:clipkit>
         ${PROJECT_SOURCE_DIR}/tests/data)
set_tests_properties(gpu_scripts.hook_and_report gpu_scripts.hf_side_smoke gpu_scripts.clipkit_rows PROPERTIES
                     LABELS "gpu_scripts" TIMEOUT 300)
set_tests_properties(gpu_scripts.hf_side_smoke PROPERTIES SKIP_RETURN_CODE 77)
