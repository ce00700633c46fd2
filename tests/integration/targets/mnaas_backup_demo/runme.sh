#!/usr/bin/env bash
# The role on the demo inventory, as `make demo` runs it (tools/demo.py): two edge nodes on this machine, local
# directories and the SQLite warehouse, a generated landing directory; a first night that backs it up and a
# second that must change nothing. The tasks that changed are read from the junit callback's XML: with
# JUNIT_FAIL_ON_CHANGE each changed task is a <failure>.
set -eux

collection="${ANSIBLE_COLLECTIONS_PATH}/ansible_collections/mnaas/backup"
root="${OUTPUT_DIR}/mnaas_backup_demo"
rm -rf "${root}"
python "${collection}/tools/make_landing.py" "${root}/edge1/MNAAS_Input" >/dev/null

night() {
    JUNIT_OUTPUT_DIR="${root}/$1" JUNIT_FAIL_ON_CHANGE=true ANSIBLE_CALLBACKS_ENABLED=ansible.builtin.junit \
        ansible-playbook -i "${collection}/inventory/demo" mnaas.backup.customer_backup -e "mnaas_demo_root=${root}" "${@:2}"
}

# Prints the hosts that had a changed task in the night's junit XML, one a line (test case names are "[host] play: task").
changed_hosts() {
    python - "${root}/$1" <<'PY'
import pathlib, sys
import xml.etree.ElementTree as ET
cases = [case for path in pathlib.Path(sys.argv[1]).glob('*.xml') for case in ET.parse(path).iter('testcase')]
if not cases:
    sys.exit('no junit results in %s' % sys.argv[1])
print('\n'.join(sorted({case.get('name')[1:].split(']')[0] for case in cases if case.find('failure') is not None})))
PY
}

night first "$@"
changed=$(changed_hosts first)
[ "${changed}" = "$(printf 'edge1\nedge2')" ]

night second "$@"
changed=$(changed_hosts second)
[ -z "${changed}" ]

# The night's outcome, checked without the collection: the flag, and every primary copy on the secondary, byte for byte.
[ "$(cat "${root}/edge1/MNAAS_backup_files_process_ProcessStatusFile")" = SUCCESS ]
cd "${root}/edge1/backup1/Customer_backup"
find . -type f -exec sha256sum -- {} + >"${root}/primary.sha256"
[ "$(wc -l <"${root}/primary.sha256")" -gt 0 ]
cd "${root}/edge2/backup2/Customer_backup"
sha256sum --check --strict --quiet "${root}/primary.sha256"
