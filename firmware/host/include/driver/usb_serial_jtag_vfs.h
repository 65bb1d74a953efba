// Host stand-in for ESP-IDF's driver/usb_serial_jtag_vfs.h (v5.5).
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

void usb_serial_jtag_vfs_use_driver(void);
void usb_serial_jtag_vfs_use_nonblocking(void);

#ifdef __cplusplus
}
#endif
