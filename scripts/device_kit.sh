#!/usr/bin/env bash
# Packs the header-only dependencies of the core, the latentkit command and the core tests into .deps/ (ignored by
# git), so that a machine without Debian's packages (a lent GPU machine with only Python's torch,
# nvcc, cmake and ninja) can build them with scripts/device_build.sh. Run it here, on Debian 12
# with the project's packages installed (scripts/setup.sh); then carry .deps to the other machine.
#
# fmt and spdlog are used header-only there (FMT_HEADER_ONLY, spdlog's header-only target), so
# nothing compiled on this machine has to match the other machine's C++ runtime or torch's ABI.
# zlib's headers come along; its library is the other machine's own libz.so.1.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=.deps
rm -rf "$kit.tmp"
mkdir -p "$kit.tmp/include/eigen3" "$kit.tmp/lib/cmake"

need() { [ -e "$1" ] || { echo "device_kit: $1 is missing (run scripts/setup.sh first)" >&2; exit 1; }; }
for f in /usr/include/eigen3/Eigen /usr/include/fmt /usr/include/spdlog /usr/include/nlohmann /usr/include/CLI \
         /usr/include/doctest /usr/lib/cmake/doctest/doctest.cmake /usr/include/zlib.h /usr/include/zconf.h; do
  need "$f"
done
cp -r /usr/include/eigen3/Eigen "$kit.tmp/include/eigen3/"
cp -r /usr/include/fmt /usr/include/spdlog /usr/include/nlohmann /usr/include/CLI /usr/include/doctest "$kit.tmp/include/"
cp /usr/include/zlib.h /usr/include/zconf.h "$kit.tmp/include/"

version() { dpkg-query -W -f='${Version}' "$1" | sed -E 's/^[0-9]+://; s/[^0-9.].*$//'; }

# package(NAME VERSION TARGET "DEFINITIONS" "LINKS" INCLUDE_SUBDIR): a CMake package of one
# header-only imported target, with a version file that accepts any request of the same major.
package() {
  local name=$1 ver=$2 target=$3 defs=$4 links=$5 sub=$6 dir="$kit.tmp/lib/cmake/$1"
  mkdir -p "$dir"
  cat > "$dir/${name}Config.cmake" <<EOF
# Written by latentkit's scripts/device_kit.sh: ${name} ${ver}, header-only.
if(NOT TARGET ${target})
  add_library(${target} INTERFACE IMPORTED)
  set_target_properties(${target} PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "\${CMAKE_CURRENT_LIST_DIR}/../../../include${sub}"
    INTERFACE_COMPILE_DEFINITIONS "${defs}"
    INTERFACE_LINK_LIBRARIES "${links}")
endif()
set(${name}_FOUND TRUE)
EOF
  cat > "$dir/${name}ConfigVersion.cmake" <<EOF
set(PACKAGE_VERSION "${ver}")
string(REGEX MATCH "^[0-9]+" _major "\${PACKAGE_FIND_VERSION}")
string(REGEX MATCH "^[0-9]+" _have "${ver}")
if(PACKAGE_FIND_VERSION AND (PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION OR NOT _major STREQUAL _have))
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
EOF
}

package fmt "$(version libfmt-dev)" fmt::fmt "FMT_HEADER_ONLY=1" "" ""
package spdlog "$(version libspdlog-dev)" spdlog::spdlog "SPDLOG_FMT_EXTERNAL" "fmt::fmt" ""
package nlohmann_json "$(version nlohmann-json3-dev)" nlohmann_json::nlohmann_json "" "" ""
package CLI11 "$(version libcli11-dev)" CLI11::CLI11 "" "" ""
package Eigen3 "$(version libeigen3-dev)" Eigen3::Eigen "" "" "/eigen3"
package doctest "$(version doctest-dev)" doctest::doctest "" "" ""
# doctest_discover_tests (include(doctest)) comes with the package, as in Debian's.
cp /usr/lib/cmake/doctest/doctest.cmake /usr/lib/cmake/doctest/doctestAddTests.cmake "$kit.tmp/lib/cmake/doctest/"
sed -i '1a list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")' "$kit.tmp/lib/cmake/doctest/doctestConfig.cmake"
# spdlog's config asks for fmt itself; ours relies on the fmt package found before it.
sed -i '1a include(CMakeFindDependencyMacro)\nfind_dependency(fmt)' "$kit.tmp/lib/cmake/spdlog/spdlogConfig.cmake"

rm -rf "$kit"
mv "$kit.tmp" "$kit"
echo "device_kit: wrote $kit ($(du -sh "$kit" | cut -f1)); carry it with the source tree and run scripts/device_build.sh there"
