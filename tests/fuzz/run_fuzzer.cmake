# Runs one libFuzzer binary for a fixed time over a scratch copy of its seed
# corpus (the repository's corpus is never written), for CTest:
#
#   cmake -DFUZZER=<binary> -DCORPUS=<seed dir> -DWORK=<scratch dir>
#         -DSECONDS=<n> [-DDICT=<file>] -P run_fuzzer.cmake
#
# Fails on any crash, leak, timeout (-timeout=10 per input), out-of-memory
# (-rss_limit_mb=2048) or invariant violation; the input that caused it is
# then in WORK/artifacts/, and its path is printed.
foreach(var FUZZER CORPUS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${CORPUS}/*)
if(seeds)
  file(COPY ${seeds} DESTINATION ${WORK}/corpus)
endif()

set(args -max_total_time=${SECONDS} -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
  -artifact_prefix=${WORK}/artifacts/)
if(DEFINED DICT)
  list(APPEND args -dict=${DICT})
endif()

message(STATUS "${FUZZER} ${args} ${WORK}/corpus")
execute_process(COMMAND ${FUZZER} ${args} ${WORK}/corpus
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE rc)

file(GLOB artifacts ${WORK}/artifacts/*)
if(NOT rc EQUAL 0 OR artifacts)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}). Reproducer(s): ${artifacts}\n"
    "Replay one with: ${FUZZER} <file>")
endif()
