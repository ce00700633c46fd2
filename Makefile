# Build, test and CI entry points for the mnaas.backup collection.
#
#   make test         everything CI runs: venv, apt-deps, install, sanity, lint, units, integration, system
#   make venv         .venv with tests/requirements.txt (re-installs when a requirements file changes)
#   make collection   .build/ansible_collections/mnaas/backup = copy of the git-visible files
#   make install      build the tarball (.build/dist) and install it into .venv/collections
#   make sanity | lint | units (+ units-py39, units-paramiko) | integration | system | demo | bench | clean

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# One shell per recipe (so shell variables and `cd` carry across lines); with -e it still stops
# at the first failing command.
.ONESHELL:
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:

NAMESPACE  := mnaas
NAME       := backup
PYTHON     ?= python3

VENV       := $(CURDIR)/.venv
VENV_BIN   := $(VENV)/bin
VPY        := $(VENV_BIN)/python
STAMP      := $(VENV)/.installed

BUILD      := $(CURDIR)/.build
COLL_DIR   := $(BUILD)/ansible_collections/$(NAMESPACE)/$(NAME)
DIST       := $(BUILD)/dist

# The collection installed by `make install` is found from here by ansible, ansible-playbook,
# ansible-lint and the system tests; .venv/bin comes first on PATH so the tests' calls to
# `ansible-playbook` use the venv's ansible-core.
export ANSIBLE_COLLECTIONS_PATH := $(VENV)/collections
export PATH := $(VENV_BIN):$(PATH)
# Keep pip quiet about its own version; never prompt.
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

# Debian packages the tests and benchmarks need (debootstrap: the edge nodes' own Debian 11 root, whose sshd,
# Python and libfaketime they run, tests/services/edge_nodes/build-root.sh; openssh-client: ssh and ssh-keygen
# on this host; shellcheck: without it ansible-test skips its shellcheck sanity test with only a warning;
# Java and Maven: the test HDFS; time: peak memory in the benchmarks; e2fsprogs: chattr for the permission faults
# and mkfs.ext4 for the benchmark images, "required" in Debian but not in every minimal image).
APT_PACKAGES ?= rsync openssh-client debootstrap shellcheck openjdk-17-jdk-headless maven curl unzip time e2fsprogs

REQUIREMENTS := requirements.txt requirements-nodes.txt tests/requirements.txt

.PHONY: test venv apt-deps collection install sanity lint ee units units-py39 units-paramiko integration system services-up services-down wheelhouse demo bench clean

test: venv apt-deps install
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory units
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory system

# ---------------------------------------------------------------------------------------------
# Environment

venv: $(STAMP)

$(STAMP): $(REQUIREMENTS)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install -r tests/requirements.txt
	touch $@

# No-op when every package is already installed; `apt-get update` only when one is missing.
apt-deps:
	missing=""
	for pkg in $(APT_PACKAGES); do
	  dpkg -s "$$pkg" >/dev/null 2>&1 || missing="$$missing $$pkg"
	done
	if [ -n "$$missing" ]; then
	  echo "apt-deps: installing$$missing"
	  export DEBIAN_FRONTEND=noninteractive
	  apt-get update -qq
	  apt-get install -y -qq --no-install-recommends $$missing
	fi

# ---------------------------------------------------------------------------------------------
# Collection copy, build and install

# ansible-test must run with its cwd at ansible_collections/NS/NAME and resolves symlinks, so
# the collection is COPIED there: exactly the files git sees (tracked + untracked, not ignored;
# tracked files deleted in the work tree are skipped). The copy gets a throw-away `git init` so
# ansible-test lists its files through git itself instead of walking up to the outer repo,
# whose .gitignore hides .build/ and would leave ansible-test with no files at all.
collection:
	rm -rf $(COLL_DIR)
	mkdir -p $(COLL_DIR)
	git ls-files -z --cached --others --exclude-standard \
	  | while IFS= read -r -d '' f; do if [ -e "$$f" ]; then printf '%s\0' "$$f"; fi; done \
	  | xargs -0 -r cp -a --parents -t $(COLL_DIR)
	git -C $(COLL_DIR) init -q
	echo "collection: $$(find $(COLL_DIR) -path '*/.git' -prune -o -type f -print | wc -l) files in $(COLL_DIR)"

# The tarball is built from the copy, so it holds the same files sanity tests.
install: venv collection
	rm -rf $(DIST)
	cd $(COLL_DIR)
	ansible-galaxy collection build --force --output-path $(DIST)
	ansible-galaxy collection install --force --no-deps -p $(ANSIBLE_COLLECTIONS_PATH) $(DIST)/$(NAMESPACE)-$(NAME)-*.tar.gz

# ---------------------------------------------------------------------------------------------
# Checks

# --venv: ansible-test builds one virtualenv per sanity test from PyPI (pylint, yamllint, ...),
# cached under ~/.ansible/test/venv.
# ansible-test bootstraps pip in those venvs with a get-pip script it downloads from a host we
# cannot reach; it looks in ~/.ansible/test/cache first, so our stand-in is placed there (a real
# cached script is left alone).
# Python versions: module code runs on the managed nodes, so compile and import are run on every
# supported Python 3.x found (pyenv installs first, then PATH; pyenv shims of inactive versions
# do not run, hence the symlink dir). `make sanity SANITY_PYTHON=3.11` restricts to one version.
SANITY_PYTHON ?=
SANITY_PYBIN  := $(BUILD)/python-bin
sanity: venv apt-deps collection
	pip_version=$$(sed -n "s/^ *pip='\([0-9.]*\)',/\1/p" \
	  "$$($(VPY) -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py")
	if [ -z "$$pip_version" ]; then echo "sanity: cannot find ansible-test's pip version" >&2; exit 1; fi
	get_pip="$$HOME/.ansible/test/cache/get_pip_$${pip_version//./_}.py"
	if [ ! -f "$$get_pip" ] || grep -q 'mnaas.backup stand-in' "$$get_pip"; then
	  install -D -m 0644 $(CURDIR)/.ci/ansible_test_get_pip.py "$$get_pip"
	fi
	rm -rf $(SANITY_PYBIN)
	mkdir -p $(SANITY_PYBIN)
	versions=$$($(VPY) -c 'from ansible_test._util.target.common import constants as c
	print(*c.REMOTE_ONLY_PYTHON_VERSIONS, *c.CONTROLLER_PYTHON_VERSIONS)')
	for v in $$versions; do
	  for py in $${PYENV_ROOT:-$$HOME/.pyenv}/versions/*/bin/python$$v $$(type -ap python$$v); do
	    if [ -x "$$py" ] && "$$py" -c '' 2>/dev/null; then ln -s "$$py" $(SANITY_PYBIN)/python$$v; break; fi
	  done
	done
	echo "sanity: Pythons found: $$(ls $(SANITY_PYBIN) | tr '\n' ' ')"
	cd $(COLL_DIR)
	PATH=$(SANITY_PYBIN):$$PATH ansible-test sanity --venv --color no $(if $(SANITY_PYTHON),--python $(SANITY_PYTHON))

lint: venv install ee
	ansible-lint
	antsibull-changelog lint

# The execution environment's build context (meta/execution-environment.yml, the controller image) written by
# ansible-builder into $(BUILD)/ee; no image is built (no container registry here: `ansible-builder build` does,
# from the same file). Fails when ansible-builder does, or when the context does not hold our requirements.
EE_CONTEXT := $(BUILD)/ee
ee: venv
	rm -rf $(EE_CONTEXT)
	ansible-builder create -f meta/execution-environment.yml -c $(EE_CONTEXT) --output-filename Containerfile
	for f in requirements.txt bindep.txt; do
	  cmp -s $$f $(EE_CONTEXT)/_build/$$f || { echo "ee: the build context's _build/$$f is not ours" >&2; exit 1; }
	done
	grep -q '^ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.16 ansible-runner"$$' $(EE_CONTEXT)/Containerfile \
	  || { echo "ee: the Containerfile does not install ansible-core>=2.16 and ansible-runner" >&2; exit 1; }
	echo "ee: build context in $(EE_CONTEXT) (Containerfile, _build/requirements.txt, _build/bindep.txt)"

# Unit tests run in the copy with PYTHONPATH=.build so that
# `import ansible_collections.mnaas.backup...` (plugins and tests alike) resolves to it;
# importlib mode lets test files in different folders share a basename.
# pytest exit code 5 (no test collected) is a failure: the suites must exist.
units: venv collection
	cd $(COLL_DIR)
	rc=0
	PYTHONPATH=$(BUILD)$${PYTHONPATH:+:$$PYTHONPATH} $(VPY) -m pytest --import-mode=importlib -p no:cacheprovider tests/unit || rc=$$?
	[ $$rc -ne 5 ] || echo "units: FAILED - no unit tests collected" >&2
	$(MAKE) -C $(CURDIR) --no-print-directory units-py39 || rc=$$?
	$(MAKE) -C $(CURDIR) --no-print-directory units-paramiko || rc=$$?
	exit $$rc

# The unit tests of the code that runs on the edge nodes (module_utils and modules) again on their oldest Python,
# 3.9: the Python of the nodes' own Debian 11 root (tests/services/edge_nodes/build-root.sh, built for the system
# tests anyway), run in a throw-away overlay of that root (in-root.sh). The controller-side tests (filter, lookup,
# plugin_utils, roles, tools) are left out: they need Python 3.11+, as ansible-core 2.19's controller does.
# ansible-core does not install on 3.9: .venv's `ansible` package is bound into the root alone, at its own path,
# for ansible.module_utils (Python 3.8+). pytest, hypothesis and the node libraries go into a virtualenv made by
# the root's Python without pip, from wheels tools/wheelhouse.py fetches for it and with pip run from its wheel, as
# on the nodes (wheelhouse.json's "install"); both are cached under PY39_CACHE, keyed by root and requirements.
PY39_CACHE ?= /var/cache/mnaas-backup/units-py39
PY39_TESTS := tests/unit/plugins/module_utils tests/unit/plugins/modules
# pip download evaluates environment markers for the Python it runs on, not for --python-version: the back-ports
# pytest and hypothesis require only below Python 3.11 are named here.
PY39_BACKPORTS := exceptiongroup>=1 tomli>=1
units-py39: venv collection
	in_root=$(CURDIR)/tests/services/edge_nodes/in-root.sh
	root=$$(bash tests/services/edge_nodes/build-root.sh)
	mkdir -p $(PY39_CACHE)
	requirements=$(BUILD)/units-py39-requirements.txt
	{ cat requirements-nodes.txt; grep -E '^(pytest|hypothesis)[<>=]' tests/requirements.txt; echo '$(PY39_BACKPORTS)'; } \
	  | sed 's/ *#.*//' | tr ' ' '\n' | grep . >$$requirements
	cache=$(PY39_CACHE)/$$({ basename "$$root"; cat $$requirements; } | sha256sum | cut -c1-12)
	exec 8>$(PY39_CACHE)/.lock
	flock 8
	if [ ! -f $$cache/.complete ]; then
	  echo "units-py39: wheels and virtualenv for Python 3.9 into $$cache (once)"
	  rm -rf $$cache
	  $(VPY) tools/wheelhouse.py --python 3.9 --glibc 2.31 -r $$requirements -o $$cache/wheels
	  install=$$($(VPY) -c 'import json, sys; print(json.load(open(sys.argv[1]))["install"])' $$cache/wheels/wheelhouse.json)
	  install=$${install//VENV/$$cache/venv}
	  $$in_root --rw $$cache -- sh -c "$${install//DIR/$$cache/wheels}" >/dev/null
	  touch $$cache/.complete
	fi
	flock -u 8
	ansible=$$($(VPY) -c 'import ansible, os; print(os.path.dirname(ansible.__file__))')
	cd $(COLL_DIR)
	rc=0
	$$in_root --rw $(BUILD) --ro $$cache --ro $$ansible -- env PYTHONPATH=$(BUILD):$${ansible%/*} PIP_FIND_LINKS=$$cache/wheels \
	  $$cache/venv/bin/python -m pytest --import-mode=importlib -p no:cacheprovider $(PY39_TESTS) || rc=$$?
	[ $$rc -ne 5 ] || echo "units-py39: FAILED - no unit tests collected" >&2
	exit $$rc

# The SFTP location's unit tests again with paramiko 2.12.0 and cryptography 38.0.4, Debian 12's python3-paramiko and
# python3-cryptography: the oldest paramiko its fast path covers (.venv has the newest from PyPI). Its own venv, from
# the same tests/requirements.txt, then that pair (pip's note that ansible-lint wants a newer cryptography is expected:
# ansible-lint does not run there); with today's cryptography, paramiko 2.12 cannot read the encrypted keys the tests write.
PARAMIKO_OLD      := 2.12.0
PARAMIKO_OLD_DEPS := cryptography==38.0.4
PARAMIKO_VENV     := $(BUILD)/venv-paramiko-2.12
units-paramiko: venv collection
	pins="paramiko==$(PARAMIKO_OLD) $(PARAMIKO_OLD_DEPS)"
	stamp=$(PARAMIKO_VENV)/.installed
	if [ "$$(cat $$stamp 2>/dev/null)" != "$$pins" ] || [ tests/requirements.txt -nt $$stamp ]; then
	  rm -rf $(PARAMIKO_VENV)
	  $(PYTHON) -m venv $(PARAMIKO_VENV)
	  $(PARAMIKO_VENV)/bin/python -m pip install -q -r tests/requirements.txt
	  $(PARAMIKO_VENV)/bin/python -m pip install -q $$pins
	  echo "$$pins" >$$stamp
	fi
	cd $(COLL_DIR)
	rc=0
	PYTHONPATH=$(BUILD)$${PYTHONPATH:+:$$PYTHONPATH} $(PARAMIKO_VENV)/bin/python -m pytest --import-mode=importlib -p no:cacheprovider \
	  tests/unit/plugins/module_utils/_locations/ || rc=$$?
	[ $$rc -ne 5 ] || echo "units-paramiko: FAILED - no unit tests collected" >&2
	exit $$rc

# ansible-test's integration targets (tests/integration/targets: each module on this machine with local directories and
# the SQLite warehouse, and the role on the demo inventory, run twice), from the copy as sanity runs; --local: no
# container, nothing downloaded. The targets write only under ansible-test's output dir (tests/output in the copy).
integration: venv collection
	cd $(COLL_DIR)
	ansible-test integration --local --color no

# System tests (pytest files under tests/system) drive ansible-playbook and the locations against real services:
# two sshd edge nodes, HDFS (NameNode + DataNode) and a HiveServer2-protocol server, all on loopback.
# They are started once here (each script is idempotent and fails loudly when its service does not
# come up) and always stopped afterwards, whatever the tests did. The fixtures see *_STARTED=1 and
# leave the services alone; they never skip a test.
SERVICES := edge_nodes hdfs hiveserver2
system: venv install apt-deps
	rc=0
	trap 'for s in $(SERVICES); do bash tests/services/$$s/stop.sh || true; done' EXIT
	for s in $(SERVICES); do
	  echo "system: starting $$s"
	  MNAAS_PYTHON=$(VPY) bash tests/services/$$s/start.sh
	done
	MNAAS_EDGES_STARTED=1 MNAAS_HDFS_STARTED=1 MNAAS_HS2_STARTED=1 \
	  $(VPY) -m pytest tests/system -v -p no:cacheprovider || rc=$$?
	[ $$rc -ne 5 ] || echo "system: FAILED - no system tests collected" >&2
	exit $$rc

services-up: venv apt-deps
	for s in $(SERVICES); do MNAAS_PYTHON=$(VPY) bash tests/services/$$s/start.sh; done

services-down:
	for s in $(SERVICES); do bash tests/services/$$s/stop.sh || true; done

# ---------------------------------------------------------------------------------------------
# Edge nodes

# Offline wheelhouse of requirements-nodes.txt for the edge nodes' Python (by default CPython 3.9, glibc 2.28 or
# newer, x86_64), whatever this machine's Python is: binary wheels for the nodes' platform, pure-Python wheels built
# here for the libraries without one, a pip wheel to install with (the nodes have no pip), the requirements file
# and wheelhouse.json. A rerun reuses what is there. playbooks/prepare_nodes.yml installs it into a virtualenv on
# each node; `tools/wheelhouse.py --help` and wheelhouse.json's "install" say how to install it by hand.
NODE_PYTHON ?= 3.9
NODE_GLIBC  ?= 2.28
NODE_ARCH   ?= x86_64
WHEELHOUSE  ?= $(BUILD)/wheelhouse
wheelhouse: venv
	$(VPY) tools/wheelhouse.py --python $(NODE_PYTHON) --glibc $(NODE_GLIBC) --arch $(NODE_ARCH) -r requirements-nodes.txt -o $(WHEELHOUSE)

# ---------------------------------------------------------------------------------------------
# Demo, benchmarks, cleanup

demo: venv install
	$(VPY) tools/demo.py

bench: venv install apt-deps
	$(VPY) benchmarks/run.py

clean:
	rm -rf $(BUILD) $(VENV)
