#include "core/window_max_pool.h"

#include <algorithm>

namespace convoy {

namespace {

using tag = dnnl::memory::format_tag;

}  // namespace

int WindowMaxPool::widest_width() {
#ifdef CONVOY_WIDE_POOL_KERNELS  // x86-64: window_max_pool_avx2.cc and _avx512.cc are built
  static const int widest = [] {
    __builtin_cpu_init();
    int cpu = 4;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
      cpu = 16;
    } else if (__builtin_cpu_supports("avx2")) {
      cpu = 8;
    }
    // No wider than oneDNN runs (ONEDNN_MAX_CPU_ISA), so that a CPU held to an older set of
    // instructions runs all of convoy as that CPU would. (ISA values are sets of feature bits.)
    const auto effective = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto has = [&](dnnl::cpu_isa isa) {
      return (effective & static_cast<unsigned>(isa)) == static_cast<unsigned>(isa);
    };
    const int onednn = has(dnnl::cpu_isa::avx512_core) ? 16 : has(dnnl::cpu_isa::avx2) ? 8 : 4;
    return std::min(cpu, onednn);
  }();
  return widest;
#else
  return 4;
#endif
}

std::optional<WindowMaxPool> WindowMaxPool::create(const dnnl::memory::desc& src,
                                                   const Window& window, int max_width) {
  const Dims dims = src.dims();
  const dnnl::memory::data_type type = src.data_type();
  if (dims.size() != 4 ||
      (type != dnnl::memory::data_type::f32 && type != dnnl::memory::data_type::bf16)) {
    return std::nullopt;
  }
  if (window.kernel.size() != 2 || window.stride != window.kernel) return std::nullopt;
  if (std::any_of(window.pad.begin(), window.pad.end(), [](int64_t p) { return p != 0; })) {
    return std::nullopt;
  }
  const int64_t n = dims[0], c = dims[1], h = dims[2], w = dims[3];
  const int64_t kh = window.kernel[0], kw = window.kernel[1];
  if (kh * kw > 64 || kh > h || kw > w) return std::nullopt;
  const Dims out_dims{n, c, h / kh, w / kw};

  WindowMaxPool pool;
  window_pool::Geometry& g = pool.geometry_;
  g.bf16 = type == dnnl::memory::data_type::bf16;
  g.images = n;
  g.kernel_h = kh;
  g.kernel_w = kw;
  g.in_h = h;
  g.in_w = w;
  g.out_h = h / kh;
  g.out_w = w / kw;
  // Channel-innermost layouts only: a group of `lanes` channels is contiguous at every pixel.
  for (const tag t : {tag::nChw16c, tag::nChw8c, tag::nhwc}) {
    if (src != dnnl::memory::desc(dims, type, t)) continue;
    pool.dst_desc_ = dnnl::memory::desc(out_dims, type, t);
    if (t == tag::nhwc) {
      if (c % 8 != 0) return std::nullopt;
      g.lanes = c % 16 == 0 ? 16 : 8;
      g.groups = c / g.lanes;
      g.in = {h * w * c, g.lanes, w * c, c};
      g.out = {g.out_h * g.out_w * c, g.lanes, g.out_w * c, c};
    } else {
      const int64_t block = t == tag::nChw16c ? 16 : 8;
      g.lanes = static_cast<int>(block);
      g.groups = (c + block - 1) / block;  // padded channels are zeros: pooled like any
      g.in = {g.groups * h * w * block, h * w * block, w * block, block};
      g.out = {g.groups * g.out_h * g.out_w * block, g.out_h * g.out_w * block, g.out_w * block,
               block};
    }
    // 4, 8 or 16: the widest kernel within the CPU's, the channels taken at once, and the cap.
    const int limit = std::min({widest_width(), g.lanes, max_width});
    while (pool.width_ * 2 <= limit) pool.width_ *= 2;
    return pool;
  }
  return std::nullopt;
}

void WindowMaxPool::forward(const void* src, void* dst, uint8_t* argmax, bool relu) const {
  switch (width_) {
#ifdef CONVOY_WIDE_POOL_KERNELS
    case 16:
      return window_pool::Kernels<16>::forward(geometry_, src, dst, argmax, relu);
    case 8:
      return window_pool::Kernels<8>::forward(geometry_, src, dst, argmax, relu);
#endif
    default:
      return window_pool::Kernels<4>::forward(geometry_, src, dst, argmax, relu);
  }
}

void WindowMaxPool::backward(const void* diff_dst, const uint8_t* argmax, void* diff_src) const {
  switch (width_) {
#ifdef CONVOY_WIDE_POOL_KERNELS
    case 16:
      return window_pool::Kernels<16>::backward(geometry_, diff_dst, argmax, diff_src);
    case 8:
      return window_pool::Kernels<8>::backward(geometry_, diff_dst, argmax, diff_src);
#endif
    default:
      return window_pool::Kernels<4>::backward(geometry_, diff_dst, argmax, diff_src);
  }
}

}  // namespace convoy
