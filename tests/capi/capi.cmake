# Tests of the C ABI (libmtile_c): a C program that uses only mtile.h, and a C++ test of every
# entry point and error, with a kernel library (examples/kernel_library) for mtile_load_library.
# They link mtile_c alone: a second copy of mtile (mtile_static) would hold a second registry.
enable_language(C)
add_executable(capi_c_test ${CMAKE_CURRENT_LIST_DIR}/c_program.c)
target_link_libraries(capi_c_test PRIVATE mtile_c)
set_target_properties(capi_c_test PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON)
add_test(NAME capi_c_test COMMAND capi_c_test)

add_library(capi_kernel_library MODULE ${PROJECT_SOURCE_DIR}/examples/kernel_library/axpy.cpp)
target_link_libraries(capi_kernel_library PRIVATE mtile_c)

add_executable(capi_test ${CMAKE_CURRENT_LIST_DIR}/capi_test.cpp)
target_link_libraries(capi_test PRIVATE mtile_c GTest::gtest_main Threads::Threads)
target_compile_definitions(capi_test PRIVATE MTILE_KERNEL_LIBRARY="$<TARGET_FILE:capi_kernel_library>")
add_dependencies(capi_test capi_kernel_library)
gtest_discover_tests(capi_test DISCOVERY_MODE PRE_TEST)
