// libFuzzer target for everything the device parses from the host: the stream decoder, request
// JSON, the upload receiver fed by decoded chunks, the request service (plain and queued detects, with
// a compute time taken from the input, so queued uploads overlap a computing image), and PDL3 headers.
// Run from tests/host/protocol/test_protocol_cpp.py with a bounded -runs/-max_total_time.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "hil_protocol/decoder.hpp"
#include "hil_protocol/json.hpp"
#include "hil_protocol/pdl3.hpp"
#include "hil_protocol/service.hpp"
#include "hil_protocol/upload.hpp"
#include "fake_backend.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    // First byte: small negotiated chunk size; second byte: how to slice the stream.
    const size_t chunk = 1 + data[0] % 64;
    const size_t slice = 1 + data[1] % 37;
    data += 2;
    size -= 2;

    std::vector<uint8_t> image(chunk * 5 + 3);
    hil::UploadReceiver rx;
    rx.begin(1, image.data(), image.size(), chunk);
    hil::RequestDecoder dec(chunk);
    std::vector<std::string> replies;
    hil::JsonObject obj;
    auto on_event = [&](const hil::DecoderEvent &e) {
        if (e.kind == hil::DecoderEvent::kRequest) {
            std::string err;
            obj.parse(e.body, &err);
        } else if (e.kind == hil::DecoderEvent::kChunk) {
            rx.on_chunk(e.upload_id, e.seq, e.payload, e.payload_len, replies);
        } else if (e.has_header) {
            rx.on_bad_frame(e.upload_id, e.seq, replies);
        }
        if (replies.size() > 1024) {
            replies.clear();
        }
    };
    for (size_t pos = 0; pos < size; pos += slice) {
        const size_t n = (size - pos) < slice ? (size - pos) : slice;
        dec.feed(data + pos, n, on_event);
        if (dec.buffered() > dec.capacity()) {
            std::abort();
        }
    }
    // The whole request service on the same bytes: every request path, uploads included.
    FakeBackend fb;
    fb.alloc_limit = 4096;
    fb.compute_us = static_cast<int64_t>(data[-1] % 8) * 4000;  // the slice byte: 0..28 ms per queued detect
    hil::Limits lim;
    lim.max_image = 4096;
    lim.chunk_max = 64;
    lim.rx_buffer = 1024;
    {
        hil::Service svc(fb, lim);
        for (size_t pos = 0; pos < size; pos += slice) {
            const size_t n = (size - pos) < slice ? (size - pos) : slice;
            svc.feed(data + pos, n);
            fb.clock_us += 1000 * static_cast<int64_t>(slice);
            svc.poll();
            fb.sent.clear();
            // Two image buffers at most, whatever the input (FakeBackend refuses a third allocation).
            if (svc.images_held() > lim.queue || fb.buffers.size() > lim.queue) {
                std::abort();
            }
        }
    }
    if (!fb.buffers.empty() || fb.job_active) {
        std::abort();  // the service leaked an image or left a job running
    }

    hil::Pdl3Header h;
    std::string err;
    hil::parse_pdl3(data, size, &h, &err);
    return 0;
}
