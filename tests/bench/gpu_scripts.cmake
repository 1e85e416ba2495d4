# bench/gpu_check.sh's parts, checked without a GPU (label gpu_scripts): the clipkit-side hook and
# the report on synthetic rows, and hf_side.py --smoke on the CPU (skipped where python3 has no torch).
add_test(NAME gpu_scripts.hook_and_report COMMAND ${CMAKE_CURRENT_LIST_DIR}/gpu_scripts_test.sh hook $<TARGET_FILE:clipkit>)
add_test(NAME gpu_scripts.hf_side_smoke COMMAND ${CMAKE_CURRENT_LIST_DIR}/gpu_scripts_test.sh hf)
set_tests_properties(gpu_scripts.hook_and_report gpu_scripts.hf_side_smoke PROPERTIES LABELS "gpu_scripts" TIMEOUT 300)
set_tests_properties(gpu_scripts.hf_side_smoke PROPERTIES SKIP_RETURN_CODE 77)
