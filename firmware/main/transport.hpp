// The console byte stream the protocol runs on: UART or USB-Serial-JTAG, chosen by the console Kconfig.
//
// Reads bypass stdio (its CR->LF translation would corrupt binary chunks); records are written
// through stdout so they share the stdio lock with ESP_LOG and never interleave with a log line.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hil_fw {

class Transport {
public:
    // Install the console driver with a receive buffer of `rx_buffer` bytes. False on failure.
    bool begin(size_t rx_buffer);
    // Up to `len` bytes, waiting at most `timeout_ms` for the first one. Returns the count (0 on timeout).
    size_t read(uint8_t *buf, size_t len, uint32_t timeout_ms);
    // One complete record line.
    void write_line(const char *data, size_t len);
    const char *name() const;
    size_t rx_buffer() const { return rx_buffer_; }

private:
    size_t rx_buffer_ = 0;
};

}  // namespace hil_fw
