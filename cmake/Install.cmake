# Installs the embedded library: headers, libm3vdb.so and a CMake package so consumers write
#   find_package(m3vdb REQUIRED)  target_link_libraries(app PRIVATE m3vdb::m3vdb)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS m3vdb_shared EXPORT m3vdbTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES engine/include/m3vdb/m3vdb.h common/include/m3vdb/status.h common/include/m3vdb/metric.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/m3vdb)
install(TARGETS m3vdb_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT m3vdbTargets NAMESPACE m3vdb:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/m3vdb)
configure_package_config_file(cmake/m3vdbConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/m3vdbConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/m3vdb)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/m3vdbConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/m3vdbConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/m3vdbConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/m3vdb)
