# Cross build of the addon for linux-arm64 (glibc) on an x86_64 Debian host:
#   apt-get install g++-aarch64-linux-gnu   (scripts/prebuild.mjs uses this file when it is there)
# N-API headers are architecture-neutral, so nothing else from the target system is needed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
