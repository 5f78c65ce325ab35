#!/usr/bin/env bash
# Debian tools used by tests: dcmtk makes compressed DICOM variants, libopenjp2-tools makes JPEG 2000
# codestreams, redis-server backs the shared results store tests. Idempotent; needs root or sudo to install.
set -euo pipefail
need=()
command -v dcmcjpeg >/dev/null 2>&1 || need+=(dcmtk)
command -v opj_compress >/dev/null 2>&1 || need+=(libopenjp2-tools)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# chromium: the Swagger UI browser test (test/service/docs-browser.test.ts) drives Debian's build headless.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ "${#need[@]}" -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing test dependencies: ${need[*]}" >&2
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Hospital tests (issue 13): dciodvfy (dicom3tools) validates DICOM SEG output; Orthanc + its DICOMweb plugin
# is the PACS of the round trips (started on free ports by scripts/orthanc.sh, never as a system service).
hosp=()
command -v dciodvfy >/dev/null 2>&1 || hosp+=(dicom3tools)
command -v Orthanc >/dev/null 2>&1 || hosp+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || hosp+=(orthanc-dicomweb)
if [ "${#hosp[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing test dependencies: ${hosp[*]}" >&2
  $SUDO apt-get update -qq >/dev/null
  # policy-rc.d keeps the package's own Orthanc service from starting where invoke-rc.d honours it.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${hosp[@]}" >/dev/null
fi
