# `cmake --install` puts the public headers, both libraries and a CMake package config, so that a
# project outside this repo does:
#   find_package(mtile REQUIRED)
#   target_link_libraries(app PRIVATE mtile::mtile)   # or mtile::mtile_static
# examples/external is such a project (CI builds it against an installed mtile).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/mtile DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mtile mtile_static mtile_c EXPORT mtileTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mtile_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT mtileTargets NAMESPACE mtile:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mtile)
configure_package_config_file(cmake/mtileConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/mtileConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mtile)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/mtileConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mtileConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/mtileConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mtile)

# The Python wheel (pyproject.toml, scikit-build-core installs only this component): libmtile_c.so
# and the launcher extension beside the package's modules, and the headers a kernel library for mtile.load_library builds with.
if(SKBUILD)
  install(TARGETS mtile_c mtile_python_launcher LIBRARY DESTINATION mtile COMPONENT python)
  install(DIRECTORY include/mtile DESTINATION mtile/include COMPONENT python)
  install(FILES ${DLPACK_INCLUDE_DIR}/dlpack/dlpack.h DESTINATION mtile/include/dlpack COMPONENT python)
endif()
