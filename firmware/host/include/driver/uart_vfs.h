// Host stand-in for ESP-IDF's driver/uart_vfs.h (v5.5): stdout already is the console on the host.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

void uart_vfs_dev_use_driver(int uart_num);
void uart_vfs_dev_use_nonblocking(int uart_num);

#ifdef __cplusplus
}
#endif
