# The MPI communicator addon (mbvr_mpi.node, loaded by mbvr/mpi): a separate target so
# that the main addon never depends on libmpi. Built only when CMake finds an MPI.
#
# It is written to <build>/Release/mpi/, not next to mbvr.node: node-gyp-build and
# prebuildify take the first .node file in build/Release/, which must stay mbvr.node.
# It is never shipped in prebuilds/: an MPI binary is tied to the MPI it was built
# against (Open MPI and MPICH differ in ABI), so it is built on the user's machine.

option(MBVR_MPI "Build the MPI communicator addon (mbvr/mpi) when an MPI is found" ON)

set(MBVR_WITH_MPI OFF)
if(MBVR_MPI)
  # FindMPI probes each component with its language's compiler wrapper (mpicc): C
  # must be enabled, and the project itself is C++ only.
  include(CheckLanguage)
  check_language(C)
  if(CMAKE_C_COMPILER)
    enable_language(C)
    find_package(MPI COMPONENTS C)
    if(MPI_C_FOUND)
      set(MBVR_WITH_MPI ON)
    endif()
  endif()
endif()

if(MBVR_WITH_MPI)
  file(GLOB MBVR_MPI_SOURCES CONFIGURE_DEPENDS binding/mpi/*.cpp)
  add_library(mbvr_mpi SHARED ${MBVR_MPI_SOURCES} ${CMAKE_JS_SRC})
  # cmake-js passes CMAKE_LIBRARY_OUTPUT_DIRECTORY (build/Release) on Unix and
  # CMAKE_RUNTIME_OUTPUT_DIRECTORY on Windows; the addon goes to mpi/ below either.
  set(MBVR_MPI_OUTPUT_BASE "${CMAKE_LIBRARY_OUTPUT_DIRECTORY}")
  if(NOT MBVR_MPI_OUTPUT_BASE)
    set(MBVR_MPI_OUTPUT_BASE "${CMAKE_RUNTIME_OUTPUT_DIRECTORY}")
  endif()
  if(NOT MBVR_MPI_OUTPUT_BASE)
    set(MBVR_MPI_OUTPUT_BASE "${CMAKE_BINARY_DIR}")
  endif()
  set_target_properties(mbvr_mpi PROPERTIES
    PREFIX "" SUFFIX ".node"
    LIBRARY_OUTPUT_DIRECTORY "${MBVR_MPI_OUTPUT_BASE}/mpi"
    RUNTIME_OUTPUT_DIRECTORY "${MBVR_MPI_OUTPUT_BASE}/mpi"
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_include_directories(mbvr_mpi PRIVATE ${CMAKE_JS_INC} ${NODE_ADDON_API_DIR})
  # mpi.h compiled as C++ pulls in the long-deprecated MPI C++ bindings (and an undefined
  # reference to libmpi_cxx) unless told not to; the addon uses the C API only.
  target_compile_definitions(mbvr_mpi PRIVATE NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS
    NODE_ADDON_API_DISABLE_DEPRECATED OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
  target_link_libraries(mbvr_mpi PRIVATE MPI::MPI_C Threads::Threads ${CMAKE_JS_LIB})
  target_compile_options(mbvr_mpi PRIVATE -Wall -Wextra)
  if(MBVR_SANITIZE)
    target_compile_options(mbvr_mpi PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer -g)
    target_link_options(mbvr_mpi PRIVATE -fsanitize=address,undefined)
  endif()
  message(STATUS "mbvr: MPI addon ON (MPI ${MPI_C_VERSION}: ${MPI_C_LIBRARIES})")
else()
  message(STATUS "mbvr: MPI addon skipped (no MPI with development files found, or MBVR_MPI=OFF); "
                 "mbvr/mpi will say so at init(). Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev, then rebuild")
endif()
