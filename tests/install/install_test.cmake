# cmake -P script run by CTest (label `install`): installs the build tree into
# WORK_DIR/prefix, checks what was installed, then builds consumer/ against it twice, with
# find_package(Sluice) and with `pkg-config --static --cflags --libs sluice`, and runs both.

foreach(var BUILD_DIR WORK_DIR CONSUMER_DIR LIBDIR INCLUDEDIR BINDIR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_test.cmake needs -D${var}=...")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run("cmake --install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")

foreach(file
    "${BINDIR}/sluiced" "${BINDIR}/sluice" "${LIBDIR}/libsluice.a"
    "${INCLUDEDIR}/sluice/sluice.h" "${INCLUDEDIR}/sluice/client.h"
    "${INCLUDEDIR}/sluice/error.h" "${INCLUDEDIR}/sluice/types.h"
    "${LIBDIR}/cmake/Sluice/SluiceConfig.cmake" "${LIBDIR}/cmake/Sluice/SluiceConfigVersion.cmake"
    "${LIBDIR}/cmake/Sluice/SluiceTargets.cmake" "${LIBDIR}/pkgconfig/sluice.pc")
  if(NOT EXISTS "${prefix}/${file}")
    message(FATAL_ERROR "not installed: ${file}")
  endif()
endforeach()
# Nothing internal: one library, and no header that names capnp or KJ.
file(GLOB_RECURSE archives RELATIVE "${prefix}" "${prefix}/*.a" "${prefix}/*.so")
if(NOT archives STREQUAL "${LIBDIR}/libsluice.a")
  message(FATAL_ERROR "unexpected libraries installed: ${archives}")
endif()
file(GLOB headers "${prefix}/${INCLUDEDIR}/sluice/*.h")
foreach(header ${headers})
  file(STRINGS "${header}" leaks REGEX "#include <(capnp|kj)/")
  if(leaks)
    message(FATAL_ERROR "${header} includes Cap'n Proto or KJ: ${leaks}")
  endif()
endforeach()

set(sanitize_flags "")
if(SANITIZE)
  set(sanitize_flags "-fsanitize=address,undefined")
endif()

# 1. CMake package.
run("configure the consumer" "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${WORK_DIR}/cmake-build"
    "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${CXX}" -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_CXX_FLAGS=${sanitize_flags}")
run("build the consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/cmake-build")
run("run the consumer" "${WORK_DIR}/cmake-build/sluice-consumer")
if(NOT run_output MATCHES "sluice consumer ok")
  message(FATAL_ERROR "unexpected output from the CMake-built consumer: ${run_output}")
endif()
message(STATUS "find_package(Sluice): ${run_output}")

# 2. pkg-config. libsluice is static, so its Requires.private (capnp-rpc, kj-async) are
# needed at link time: --static.
run("pkg-config" "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${prefix}/${LIBDIR}/pkgconfig"
    pkg-config --static --cflags --libs sluice)
string(STRIP "${run_output}" pc_flags)
message(STATUS "pkg-config --static --cflags --libs sluice: ${pc_flags}")
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
separate_arguments(sanitize_list UNIX_COMMAND "${sanitize_flags}")
run("compile with pkg-config" "${CXX}" -std=c++17 ${sanitize_list} "${CONSUMER_DIR}/main.cpp"
    -o "${WORK_DIR}/pc-consumer" ${pc_flags})
run("run the pkg-config consumer" "${WORK_DIR}/pc-consumer")
if(NOT run_output MATCHES "sluice consumer ok")
  message(FATAL_ERROR "unexpected output from the pkg-config consumer: ${run_output}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
