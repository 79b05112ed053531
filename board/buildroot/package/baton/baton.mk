################################################################################
#
# baton
#
################################################################################

BATON_VERSION = 0.2.0
# A tarball of this checkout, made by board/buildroot/source.sh. A file site goes through
# Buildroot's download step, where pkg-cargo vendors the crates (`make baton-source`, network
# needed once); a local site is rsynced and never vendored, so an offline build finds no crates.
BATON_SITE = $(BR2_EXTERNAL_BATON_PATH)/dl
BATON_SITE_METHOD = file
BATON_LICENSE = Apache-2.0
BATON_LICENSE_FILES = LICENSE

BATON_BOARD = $(BR2_EXTERNAL_BATON_PATH)/..

# pkg-cargo sets 16 codegen units, no LTO and the global optimisation level; baton's own
# release profile (size: opt-level s, LTO, one unit, abort on panic) is put back here.
BATON_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_PANIC=abort

define BATON_INSTALL_CONFIG
	$(INSTALL) -D -m 0644 $(BATON_BOARD)/rootfs/etc/baton/baton.json \
		$(TARGET_DIR)/etc/baton/baton.json
	$(INSTALL) -D -m 0644 $(BATON_BOARD)/rootfs/etc/default/baton \
		$(TARGET_DIR)/etc/default/baton
endef
BATON_POST_INSTALL_TARGET_HOOKS += BATON_INSTALL_CONFIG

define BATON_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(BATON_BOARD)/rootfs/etc/init.d/S50baton \
		$(TARGET_DIR)/etc/init.d/S50baton
endef

define BATON_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(BATON_BOARD)/systemd/baton.service \
		$(TARGET_DIR)/usr/lib/systemd/system/baton.service
	$(INSTALL) -D -m 0644 $(BATON_BOARD)/systemd/baton.socket \
		$(TARGET_DIR)/usr/lib/systemd/system/baton.socket
endef

# the user baton.service runs as (board/systemd/baton.sysusers elsewhere)
define BATON_USERS
	baton -1 baton -1 * - - - baton TCP proxy
endef

$(eval $(cargo-package))
