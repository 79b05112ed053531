################################################################################
#
# baton
#
################################################################################

BATON_VERSION = 0.2.0
# The source tree this external tree lives in (board/buildroot/ -> the repository root).
BATON_SITE = $(BR2_EXTERNAL_BATON_PATH)/../..
BATON_SITE_METHOD = local
BATON_LICENSE = Apache-2.0
BATON_LICENSE_FILES = LICENSE

BATON_BOARD = $(BR2_EXTERNAL_BATON_PATH)/..

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
endef

$(eval $(cargo-package))
