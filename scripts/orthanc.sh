#!/usr/bin/env bash
# A throw-away Orthanc with DICOMweb for local testing (Debian packages orthanc + orthanc-dicomweb,
# installed by scripts/test-deps.sh). Free ports, storage in a temporary directory, localhost only.
#   scripts/orthanc.sh start   -> prints ORTHANC_URL=..., DICOMWEB_URL=..., ORTHANC_DICOM_PORT=..., ORTHANC_AET=..., ORTHANC_DIR=... (eval-able)
# Its DICOM side (AE title ORTHANC) accepts C-STORE from any AE title (Orthanc's default); register a peer it
# should send to with: curl -X PUT "$ORTHANC_URL/modalities/NAME" -d '{"AET": "...", "Host": "...", "Port": ...}'
#   scripts/orthanc.sh stop DIR
set -euo pipefail
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
case "${1:-}" in
  start)
    dir=$(mktemp -d -t orthanc-XXXXXX)
    http=$(free_port); dicom=$(free_port)
    cat >"$dir/orthanc.json" <<JSON
{ "Name": "unet-seg-local", "StorageDirectory": "$dir/db", "IndexDirectory": "$dir/db",
  "HttpPort": $http, "DicomPort": $dicom, "DicomAet": "ORTHANC", "HttpBindAddress": "127.0.0.1",
  "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON
    /usr/sbin/Orthanc "$dir/orthanc.json" >"$dir/orthanc.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 150); do
      if curl -fs "http://127.0.0.1:$http/system" >/dev/null 2>&1; then
        echo "ORTHANC_URL=http://127.0.0.1:$http"
        echo "DICOMWEB_URL=http://127.0.0.1:$http/dicom-web"
        echo "ORTHANC_DICOM_PORT=$dicom"
        echo "ORTHANC_AET=ORTHANC"
        echo "ORTHANC_DIR=$dir"
        exit 0
      fi
      kill -0 "$(cat "$dir/pid")" 2>/dev/null || { cat "$dir/orthanc.log" >&2; rm -rf "$dir"; exit 1; }
      sleep 0.2
    done
    echo "Orthanc not ready after 30 s" >&2; kill "$(cat "$dir/pid")" 2>/dev/null || true; exit 1 ;;
  stop)
    dir="${2:?usage: $0 stop DIR}"
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$(cat "$dir/pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.2; done
    rm -rf "$dir" ;;
  *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
