#!/usr/bin/env bash
# Installs, from Debian, the real servers the tests start (each test starts its own on free ports of
# 127.0.0.1, in a temp folder, and stops it): PostgreSQL, vsftpd (FTP/FTPS), OpenSSH (SFTP),
# Apache mod_dav and nginx dav (WebDAV), Ceph RGW (S3), Mosquitto (MQTT), socat (serial pairs), rclone
# for bench:transfer, and Chromium for the dashboard's browser tests and bench:web (driven by
# playwright-core; no browser download).
# Does nothing when they are all there. Needs root (CI runs as root).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/usr/bin/$1" ]]; }
have initdb || ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
have vsftpd || need+=(vsftpd)
have sshd || need+=(openssh-server openssh-sftp-server)
have apache2 || need+=(apache2 apache2-utils)
have nginx || need+=(nginx)
[[ -f /usr/lib/nginx/modules/ngx_http_dav_ext_module.so ]] || need+=(libnginx-mod-http-dav-ext)
have radosgw || need+=(radosgw ceph-mon ceph-osd)
have uuidgen || need+=(uuid-runtime)
have openssl || need+=(openssl)
have rclone || need+=(rclone)
have socat || need+=(socat) # a serial pair for the MAVLink FTP adapter's serial transport
have mosquitto || need+=(mosquitto)
have chromium || need+=(chromium)
if ((${#need[@]} == 0)); then exit 0; fi
echo "ferry: installing test servers from Debian: ${need[*]}" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
