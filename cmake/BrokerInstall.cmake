# Installs the CMake package so that find_package(broker) gives broker::broker.
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

set(BROKER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/broker)
if(BUILD_SHARED_LIBS)
  set(BUILD_SHARED_LIBS_BOOL TRUE)
else()
  set(BUILD_SHARED_LIBS_BOOL FALSE)
endif()

# libbroker links the warning set privately; a static library's export names every private
# dependency (as LINK_ONLY), so the set must be exported too. It adds no flags to consumers.
install(TARGETS broker_warnings EXPORT brokerTargets)
install(EXPORT brokerTargets NAMESPACE broker:: DESTINATION ${BROKER_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/brokerConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/brokerConfig.cmake INSTALL_DESTINATION ${BROKER_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/brokerConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/brokerConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/brokerConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/FindLMDB.cmake
  ${CMAKE_CURRENT_LIST_DIR}/FindMbedTLS.cmake
  DESTINATION ${BROKER_CMAKE_DIR})
