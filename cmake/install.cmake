# What `cmake --install` installs:
#   lib/liblpc.so                  one library: the runtime, the config and flags, the
#                                  local and gRPC transports, target selection
#                                  and the server main loop, with the objects
#                                  of every lpc library they depend on
#   include/lpc/...                their headers, at their paths in the tree
#   bin/lpcc                       the IDL compiler
#   lib/cmake/lpc/lpcConfig.cmake  imported targets lpc::lpc and lpc::lpcc,
#                                  and lpc_generate() (cmake/lpcGenerate.cmake)
#   lib/pkgconfig/lpc.pc           for pkg-config
#
# The list below names the public Bazel targets; the libraries they need
# come from the Bazel graph.
set(LPC_PUBLIC_TARGETS
  lpc_runtime
  lpc_runtime_config
  lpc_runtime_inprocess
  lpc_transports_connect
  lpc_runtime_flags
  lpc_runtime_serve)

# Headers of those libraries that are not installed: lpc's own internals
# that no installed header includes (the transports' hooks on CallContext).
set(LPC_UNINSTALLED_HDRS
  runtime/internal/call_context_access.h)

lpc_closure(closure ${LPC_PUBLIC_TARGETS})
set(objects)
set(system)
set(linkopts)
foreach(t IN LISTS closure)
  get_target_property(type ${t} TYPE)
  if(type STREQUAL "STATIC_LIBRARY")
    list(APPEND objects "$<TARGET_OBJECTS:${t}>")
  elseif(TARGET ${t}_objects)
    list(APPEND objects "$<TARGET_OBJECTS:${t}_objects>")
  endif()
  get_property(s GLOBAL PROPERTY LPC_SYSTEM_DEPS_${t})
  list(APPEND system ${s})
  get_property(hdrs GLOBAL PROPERTY LPC_HDRS_${t})
  list(REMOVE_ITEM hdrs ${LPC_UNINSTALLED_HDRS})
  foreach(h IN LISTS hdrs)
    get_filename_component(dir "${h}" DIRECTORY)
    install(FILES "${CMAKE_SOURCE_DIR}/${h}"
      DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/lpc/${dir}")
  endforeach()
  get_property(hdrs GLOBAL PROPERTY LPC_GEN_HDRS_${t})
  foreach(h IN LISTS hdrs)
    get_filename_component(dir "${h}" DIRECTORY)
    install(FILES "${LPC_RUNFILES}/${h}"
      DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/lpc/${dir}")
  endforeach()
endforeach()
list(REMOVE_DUPLICATES system)
list(TRANSFORM system PREPEND "SYSTEM:" OUTPUT_VARIABLE system_deps)
_lpc_resolve_deps(system ${system_deps})

add_library(lpc SHARED ${objects})
target_link_libraries(lpc PUBLIC ${system_LIBS} Threads::Threads)
target_include_directories(lpc INTERFACE
  "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/lpc>")
target_compile_features(lpc INTERFACE cxx_std_20)
set_target_properties(lpc PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
set_target_properties(lpc_codegen_lpcc PROPERTIES EXPORT_NAME lpcc)

install(TARGETS lpc lpc_codegen_lpcc EXPORT lpcTargets
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
set(config_dir "${CMAKE_INSTALL_LIBDIR}/cmake/lpc")
install(EXPORT lpcTargets NAMESPACE lpc:: DESTINATION "${config_dir}")

include(CMakePackageConfigHelpers)
configure_package_config_file(cmake/lpcConfig.cmake.in
  "${CMAKE_BINARY_DIR}/lpcConfig.cmake" INSTALL_DESTINATION "${config_dir}")
write_basic_package_version_file("${CMAKE_BINARY_DIR}/lpcConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_BINARY_DIR}/lpcConfig.cmake"
  "${CMAKE_BINARY_DIR}/lpcConfigVersion.cmake" cmake/lpcGenerate.cmake
  DESTINATION "${config_dir}")

# lpc.pc: Requires lists the pkg-config modules of the same system libraries.
set(pc_requires)
foreach(s IN LISTS system)
  get_property(pkgs GLOBAL PROPERTY LPC_SYSTEM_PKG_${s})
  list(APPEND pc_requires ${pkgs})
endforeach()
list(REMOVE_DUPLICATES pc_requires)
list(JOIN pc_requires ", " LPC_PC_REQUIRES)
# The prefix is found from the .pc file's own place, so that
# `cmake --install --prefix <dir>` gives a working lpc.pc.
file(RELATIVE_PATH LPC_PC_PREFIX "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
string(REGEX REPLACE "/$" "" LPC_PC_PREFIX "${LPC_PC_PREFIX}")
configure_file(cmake/lpc.pc.in "${CMAKE_BINARY_DIR}/lpc.pc" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/lpc.pc"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
