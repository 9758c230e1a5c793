# Installs this build of mtile to a temporary prefix, then configures, builds and runs
# examples/external against it, as a project outside the repo would.
#   cmake -DBUILD=<mtile build dir> -DSOURCE=<mtile source dir> -DWORK=<scratch dir> -P external_example.cmake
file(REMOVE_RECURSE "${WORK}")
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
step(${CMAKE_COMMAND} --install "${BUILD}" --prefix "${WORK}/prefix")
step(${CMAKE_COMMAND} -S "${SOURCE}/examples/external" -B "${WORK}/build" -G Ninja
     "-DCMAKE_PREFIX_PATH=${WORK}/prefix")
step(${CMAKE_COMMAND} --build "${WORK}/build")
step("${WORK}/build/leaky_relu")
file(REMOVE_RECURSE "${WORK}")
