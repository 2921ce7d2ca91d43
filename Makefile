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
#   make module KDIR=/usr/src/linux-headers-6.1.0-56-amd64
#                   build the module against another kernel tree
#
# Module objects are built in build/module-<kernel>/, so that several
# kernels can be built from one checkout; the UML kernel is cached outside
# the tree (see scripts/build-uml-kernel).

SHELL := /bin/bash

.PHONY: all setup tools module module-uml module-6.1 uml-kernel test check demo clean

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

check:
	scripts/setup --if-missing
	scripts/check

clean:
	$(MAKE) -C userspace clean
	rm -rf build
