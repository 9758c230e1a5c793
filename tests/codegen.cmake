# Code generator tests, included from tests/CMakeLists.txt:
#   codegen_test             the emitted text of small traced kernels (no registry needed)
#   msl_golden_test          tests/golden/msl/<kernel>.<dtype>.metal for every registered kernel;
#                            MTILE_REGEN_GOLDEN=1 rewrites them (tests/golden/msl/README.md)
#   msl_compile_check_test   every kernel's MSL compiled as C++17 against tests/msl_shim, and the Metal
#                            Mma helper run on a simulated simdgroup (tests/msl_shim/simulate)
#   cuda_compile_check_test  every kernel's CUDA through NVRTC for sm_90a (skips without NVRTC)
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_executable(codegen_test ${CMAKE_CURRENT_LIST_DIR}/unit/codegen_test.cpp)
target_include_directories(codegen_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(codegen_test PRIVATE mtile_internal GTest::gtest_main)
gtest_discover_tests(codegen_test DISCOVERY_MODE PRE_TEST)

add_executable(msl_golden_test ${CMAKE_CURRENT_LIST_DIR}/golden/msl_golden_test.cpp)
  target_link_libraries(msl_golden_test PRIVATE mtile_internal GTest::gtest_main)
  target_compile_definitions(msl_golden_test PRIVATE MTILE_GOLDEN_DIR="${CMAKE_CURRENT_LIST_DIR}/golden/msl")
  gtest_discover_tests(msl_golden_test DISCOVERY_MODE PRE_TEST)

  add_executable(msl_compile_check_test ${CMAKE_CURRENT_LIST_DIR}/unit/msl_compile_check_test.cpp)
  target_include_directories(msl_compile_check_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(msl_compile_check_test PRIVATE mtile_internal GTest::gtest_main)
  target_compile_definitions(msl_compile_check_test PRIVATE MTILE_CXX="${CMAKE_CXX_COMPILER}"
                             MTILE_MSL_SHIM_DIR="${CMAKE_CURRENT_LIST_DIR}/msl_shim"
                             MTILE_INCLUDE_DIR="${PROJECT_SOURCE_DIR}/include")
  gtest_discover_tests(msl_compile_check_test DISCOVERY_MODE PRE_TEST)

add_executable(cuda_compile_check_test ${CMAKE_CURRENT_LIST_DIR}/unit/cuda_compile_check_test.cpp)
target_include_directories(cuda_compile_check_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(cuda_compile_check_test PRIVATE mtile_internal GTest::gtest_main)
gtest_discover_tests(cuda_compile_check_test DISCOVERY_MODE PRE_TEST)
