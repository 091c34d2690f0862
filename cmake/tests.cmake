# The core's C++ tests, run by ctest: each cpp/tests/<name>.cpp is one executable,
# linked to mbvr_core (no Node), that exits 0 when it passes. A new file there is a new
# test at the next configure (or the next build: the glob is re-checked).
#   cmake -S . -B build/core-tests -DMBVR_TESTS=ON && cmake --build build/core-tests
#   cd build/core-tests && ctest --output-on-failure
# With MBVR_SANITIZE=ON they run under ASan (leak check on) and UBSan, halting at the
# first report.
enable_testing()

file(GLOB MBVR_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cpp/tests/*.cpp)
foreach(source ${MBVR_TEST_SOURCES})
  get_filename_component(name ${source} NAME_WE)
  set(target mbvr_test_${name})  # a prefix: no clash with the project's own targets
  add_executable(${target} ${source})
  set_target_properties(${target} PROPERTIES OUTPUT_NAME ${name})
  target_link_libraries(${target} PRIVATE mbvr_core)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  add_test(NAME ${name} COMMAND ${target})
  if(MBVR_SANITIZE)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT
      "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endif()
endforeach()
