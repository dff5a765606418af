# Runs one libFuzzer binary for a fixed time over a scratch copy of its seed
# corpus (the repository's corpus is never written), for CTest:
#
#   cmake -DFUZZER=<binary> -DCORPUS=<seed dir> -DWORK=<scratch dir>
#         -DSECONDS=<n> [-DDICT=<file>] [-DCRASHES=<glob>] -P run_fuzzer.cmake
#
# CRASHES: reproducers of earlier findings, replayed with the seeds.
#
# Fails on any crash, leak, timeout (-timeout=10 per input), out-of-memory
# (-rss_limit_mb=2048) or invariant violation; the input that caused it is
# then in WORK/artifacts/, and its path is printed.
foreach(var FUZZER CORPUS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}=... is required")
  endif()
endforeach()

foreach(var FUZZER CORPUS WORK)
  get_filename_component(${var} ${${var}} ABSOLUTE)
endforeach()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts ${WORK}/tmp)
# fuzz_room's database goes here: what a crashed run leaves is removed next time.
set(ENV{TMPDIR} ${WORK}/tmp)
file(GLOB seeds ${CORPUS}/*)
if(DEFINED CRASHES)
  file(GLOB crashes ${CRASHES})
  list(APPEND seeds ${crashes})
endif()
if(seeds)
  file(COPY ${seeds} DESTINATION ${WORK}/corpus)
endif()

set(args -max_total_time=${SECONDS} -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
  -artifact_prefix=${WORK}/artifacts/)
if(DEFINED DICT)
  list(APPEND args -dict=${DICT})
endif()

string(REPLACE ";" " " shown "${args}")
message(STATUS "${FUZZER} ${shown} ${WORK}/corpus")
execute_process(COMMAND ${FUZZER} ${args} ${WORK}/corpus
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE rc)

file(GLOB artifacts ${WORK}/artifacts/*)
if(NOT rc EQUAL 0 OR artifacts)
  string(REPLACE ";" "\n  " artifacts "${artifacts}")
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}). Reproducer:\n  ${artifacts}\n"
    "Replay it with ${FUZZER} <file> (FUZZ_ROOM_TRACE=1 prints every message); "
    "keep it in tests/fuzz/crashes/ (see tests/fuzz/README.md).")
endif()
