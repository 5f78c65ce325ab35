#!/usr/bin/env bash
# Debian tools used by tests, installed when missing (idempotent; needs root or sudo to install):
# - dcmtk makes compressed DICOM variants and is the other side of the decoder oracles;
# - libopenjp2-tools makes JPEG 2000 codestreams; redis-server backs the shared results store tests;
# - chromium drives the Swagger UI browser test (test/service/docs-browser.test.ts) headless;
# - dicom3tools (dciodvfy) validates DICOM SEG output; Orthanc + its DICOMweb plugin is the PACS of the
#   hospital round trips (started on free ports by scripts/orthanc.sh, never as a system service).
set -euo pipefail
need=()
command -v dcmcjpeg >/dev/null 2>&1 || need+=(dcmtk)
command -v opj_compress >/dev/null 2>&1 || need+=(libopenjp2-tools)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v dciodvfy >/dev/null 2>&1 || need+=(dicom3tools)
command -v Orthanc >/dev/null 2>&1 || need+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
[ "${#need[@]}" -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing test dependencies: ${need[*]}" >&2
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
