# Runs one case of asan_canary (cmake -DCANARY=<program> -DCASE=<case> -DREPORT=<regex> -P ...)
# and fails unless the sanitizer's report matching REPORT was printed and the program failed.
execute_process(COMMAND ${CANARY} ${CASE} RESULT_VARIABLE status OUTPUT_VARIABLE out
                ERROR_VARIABLE out)
if(status EQUAL 0 OR out MATCHES "canary survived")
  message(FATAL_ERROR "asan_canary ${CASE}: the program went on after the defect (exit ${status}):\n${out}")
endif()
if(NOT out MATCHES "${REPORT}")
  message(FATAL_ERROR "asan_canary ${CASE}: no report matching '${REPORT}' (exit ${status}):\n${out}")
endif()
message(STATUS "asan_canary ${CASE}: reported, exit ${status}")
