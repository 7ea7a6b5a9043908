# Installs the built library into a fresh prefix, then configures, builds and runs the consumer
# project in this folder against that prefix. Invoked by ctest (test "install_consumer").
set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${NGD_BINARY_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${NGD_SOURCE_DIR}/tests/install -B ${build}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE})
run(${CMAKE_COMMAND} --build ${build})
run(${build}/ngd_consumer)
