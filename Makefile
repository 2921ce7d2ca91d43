# SPDX-License-Identifier: GPL-2.0
#
# dm-parallax top-level build.
#
#   make demo       format, attach, snapshot and clone in the UML kernel
#   make            tools, the module for Debian's x86_64 6.12 kernel, the
#                   UML test kernel and the module for it
#   make setup      install every dependency from Debian's packages (root)
#   make test       set up what is missing, build, run all tests
#   make check      checkpatch --strict and sparse on the kernel code
#   make stress DURATION=SECONDS
#                   the long run of the crash-consistency and robustness
#                   tests (scripts/stress --help); default one hour
#   make bench      the benchmark suite against dm-linear, dm-thin and
#                   dm-snapshot (Documentation/performance.rst); RUNS=N,
#                   QUICK=1, PHASES=seq,rand,..., DEVICE=/dev/...
#   make module KDIR=/usr/src/linux-headers-6.1.0-56-amd64
#                   build the module against another kernel tree
#   make deb        the Debian packages parallax-dkms and parallax-tools,
#                   in build/deb/ (Documentation/packaging.rst)
#
# Module objects are built in build/module-<kernel>/, so that several
# kernels can be built from one checkout; the UML kernel is cached outside
# the tree (see scripts/build-uml-kernel).

SHELL := /bin/bash

.PHONY: all setup tools module module-uml module-6.1 uml-kernel test check demo clean deb bench stress

all: tools module uml-kernel module-uml

setup:
	scripts/setup

tools:
	$(MAKE) -C userspace

module:
	scripts/build-module $(KDIR)

module-6.1:
	scripts/build-module 6.1

uml-kernel:
	scripts/build-uml-kernel

module-uml: uml-kernel
	scripts/build-module uml

test:
	scripts/setup --if-missing
	$(MAKE) all module-6.1
	tests/run

demo:
	scripts/setup --if-missing
	$(MAKE) tools uml-kernel module-uml
	scripts/demo

stress:
	scripts/setup --if-missing
	$(MAKE) all
	scripts/stress --duration $(or $(DURATION),3600)

check:
	scripts/setup --if-missing
	scripts/check

bench:
	scripts/setup --if-missing
	bench/run $(if $(RUNS),--runs $(RUNS)) $(if $(QUICK),--quick) \
		$(if $(PHASES),--phases $(PHASES)) $(if $(DEVICE),--device $(DEVICE))

clean:
	$(MAKE) -C userspace clean
	$(MAKE) -C bench clean
	rm -rf build

# Debian packages (Documentation/packaging.rst).  dpkg-buildpackage writes
# its results next to the source tree, so it runs in a copy of the files
# the packages need, build/deb/src/, and the .deb, .buildinfo and .changes
# files land in build/deb/.  Paths not in the work tree are left out of
# the copy, and the package build then names what is missing.
DEB_PATHS := debian Kbuild dm-parallax userspace man scripts/block-parallax \
	Documentation README
DEB_EXCLUDES := --exclude=/userspace/build/ --exclude=/userspace/libparallax.a \
	--exclude=/userspace/parallax --exclude=/userspace/parallax-lockd \
	--exclude=/userspace/parallaxd --exclude=/debian/build/ \
	--exclude=/debian/.debhelper/ --exclude=/debian/parallax-dkms/ \
	--exclude=/debian/parallax-tools/ --exclude=/debian/tmp/ \
	--exclude=/debian/files --exclude=/debian/debhelper-build-stamp \
	--exclude='/debian/*.substvars' --exclude='/debian/*.debhelper*' \
	--exclude='*.o' --exclude='*.ko' --exclude='.*.cmd'

deb:
	rm -rf build/deb
	mkdir -p build/deb/src
	rsync -a --relative $(DEB_EXCLUDES) $(wildcard $(DEB_PATHS)) build/deb/src/
	cd build/deb/src && dpkg-buildpackage -us -uc -b -J
	rm -rf build/deb/src
	@ls build/deb/*.deb
