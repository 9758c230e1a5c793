# Tests of the CUDA backend. None needs CUDA to build; the device test skips itself (with the
# reason) where no GPU can be opened, the NVRTC test where libnvrtc can't be loaded.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

foreach(test cuda_cache_test cuda_nvrtc_test cuda_device_test cuda_multi_gpu_test)
  add_executable(${test} ${CMAKE_CURRENT_LIST_DIR}/unit/${test}.cpp)
  target_link_libraries(${test} PRIVATE mtile_internal GTest::gtest_main)
  gtest_discover_tests(${test} DISCOVERY_MODE PRE_TEST)
endforeach()

# Where the toolkit's headers exist, check mtile's driver and NVRTC declarations against them.
if(CUDAToolkit_FOUND)
  add_executable(cuda_abi_test ${CMAKE_CURRENT_LIST_DIR}/unit/cuda_abi_test.cpp)
  target_include_directories(cuda_abi_test PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_definitions(cuda_abi_test PRIVATE
    MTILE_CUDA_STUB_LIBRARY="${CUDAToolkit_LIBRARY_DIR}/stubs/libcuda.so")
  target_link_libraries(cuda_abi_test PRIVATE mtile_internal GTest::gtest_main)
  gtest_discover_tests(cuda_abi_test DISCOVERY_MODE PRE_TEST)
endif()
