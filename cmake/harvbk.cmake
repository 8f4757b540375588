# cmake/harvbk.cmake - packaging of libharvbk: pkg-config files and the CMake
# package (find_package(harvbk 1)). include()d by the top-level CMakeLists.txt
# after the install(TARGETS ... EXPORT harvbkTargets) rule.
#
# Installed:
#   ${libdir}/pkgconfig/harvbk.pc          shared library (-lharvbk); --static adds the
#                                          private dependencies
#   ${libdir}/pkgconfig/harvbk-static.pc   libharvbk.a + its dependencies
#   (not installed) <build>/pkgconfig-uninstalled/harvbk.pc: the build tree
#   ${libdir}/cmake/harvbk/                harvbkConfig.cmake, harvbkConfigVersion.cmake
#                                          (SameMajorVersion), harvbkTargets*.cmake:
#                                          harvbk::harvbk (shared), harvbk::harvbk_static
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

# pkg-config modules of the libraries libharvbk links (Debian -dev packages).
set(HARVBK_PC_REQUIRES "libcurl openssl zlib libzstd liblz4 libnfs libcjson")

# ---- pkg-config ----
# The .pc files name the install prefix, which `cmake --install --prefix P` may
# change after configuration: they are generated at install time from the
# prefix in effect then.
function(harvbk_pc_dir_ var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
harvbk_pc_dir_(HARVBK_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
harvbk_pc_dir_(HARVBK_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")

set(HARVBK_PC_GEN_DIR "${PROJECT_BINARY_DIR}/pkgconfig")
foreach(pc harvbk harvbk-static)
  install(CODE "
    set(HARVBK_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    set(HARVBK_PC_LIBDIR [[${HARVBK_PC_LIBDIR}]])
    set(HARVBK_PC_INCLUDEDIR [[${HARVBK_PC_INCLUDEDIR}]])
    set(HARVBK_PC_REQUIRES [[${HARVBK_PC_REQUIRES}]])
    set(PROJECT_VERSION [[${PROJECT_VERSION}]])
    configure_file([[${PROJECT_SOURCE_DIR}/pkgconfig/${pc}.pc.in]]
                   [[${HARVBK_PC_GEN_DIR}/${pc}.pc]] @ONLY)
  ")
  install(FILES "${HARVBK_PC_GEN_DIR}/${pc}.pc"
          DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endforeach()

# The same harvbk.pc for the build tree (not installed): the source headers
# and the library as built, for programs built against the build directory
# without installing it (the Go binding's tests: PKG_CONFIG_PATH=
# ${PROJECT_BINARY_DIR}/pkgconfig-uninstalled).
set(HARVBK_PC_PREFIX "${PROJECT_BINARY_DIR}")
set(HARVBK_PC_LIBDIR "$<TARGET_FILE_DIR:harvbk>")
set(HARVBK_PC_INCLUDEDIR "${PROJECT_SOURCE_DIR}/include")
configure_file("${PROJECT_SOURCE_DIR}/pkgconfig/harvbk.pc.in"
               "${PROJECT_BINARY_DIR}/pkgconfig-uninstalled/harvbk.pc.gen" @ONLY)
file(GENERATE OUTPUT "${PROJECT_BINARY_DIR}/pkgconfig-uninstalled/harvbk.pc"
     INPUT "${PROJECT_BINARY_DIR}/pkgconfig-uninstalled/harvbk.pc.gen")
unset(HARVBK_PC_PREFIX)
harvbk_pc_dir_(HARVBK_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
harvbk_pc_dir_(HARVBK_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")

# ---- CMake package ----
set(HARVBK_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/harvbk")
install(EXPORT harvbkTargets NAMESPACE harvbk:: FILE harvbkTargets.cmake
        DESTINATION "${HARVBK_CMAKE_DIR}")
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/harvbkConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/cmake/harvbkConfig.cmake"
  INSTALL_DESTINATION "${HARVBK_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/cmake/harvbkConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/cmake/harvbkConfig.cmake"
              "${PROJECT_BINARY_DIR}/cmake/harvbkConfigVersion.cmake"
        DESTINATION "${HARVBK_CMAKE_DIR}")

# ---- paths for the scripts ----
# scripts/demo.sh and scripts/test.sh read the CLI and library locations from
# here instead of guessing where the generator put them.
set(_harvbk_paths "HARVBK_LIB='$<TARGET_FILE:harvbk>'\n")
if(TARGET harvbk_cli)
  string(APPEND _harvbk_paths "HARVBK_CLI='$<TARGET_FILE:harvbk_cli>'\n")
endif()
file(GENERATE OUTPUT "${PROJECT_BINARY_DIR}/harvbk-paths.sh" CONTENT "${_harvbk_paths}")
unset(_harvbk_paths)
