// .npy bytes checked by hand, and .npz files read back by NumPy when it is installed.
#include "core/npz_writer.h"

#include <gtest/gtest.h>

#include <cstring>

#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

TEST(Npy, HeaderIsAlignedAndDescribesTheArray) {
  const std::vector<float> data = {1, 2, 3, 4, 5, 6};
  const std::string bytes = npy_bytes({"x", {2, 3}, data});
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len = static_cast<uint8_t>(bytes[8]) | static_cast<uint8_t>(bytes[9]) << 8;
  EXPECT_EQ((10 + header_len) % 64, 0u);
  const std::string header = bytes.substr(10, header_len);
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0), 0u);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(bytes.size(), 10 + header_len + 24);
  float last;
  std::memcpy(&last, bytes.data() + bytes.size() - 4, 4);
  EXPECT_EQ(last, 6.f);
  EXPECT_NE(npy_bytes({"b", {5}, std::vector<float>(5)}).find("'shape': (5,)"), std::string::npos);
}

TEST(Npz, NumpyLoadsWhatWeWrite) {
  if (testing::run_command({"/usr/bin/python3", "-c", "import numpy"}).exit_code != 0) {
    GTEST_SKIP() << "numpy is not installed for /usr/bin/python3";
  }
  testing::TempDir dir;
  const std::string path = dir.file("p.npz");
  std::vector<float> w(2 * 3 * 4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f * static_cast<float>(i) - 3.f;
  const std::vector<float> b = {-1.5f, 2.25f};
  write_npz(path, {{"conv1.weight", {2, 3, 2, 2}, w}, {"conv1.bias", {2}, b}});
  const testing::CommandResult r = testing::run_command(
      {"/usr/bin/python3", "-c",
       "import numpy as np, sys\n"
       "z = np.load(sys.argv[1])\n"
       "w, b = z['conv1.weight'], z['conv1.bias']\n"
       "assert sorted(z.files) == ['conv1.bias', 'conv1.weight'], z.files\n"
       "assert w.dtype == np.float32 and w.shape == (2, 3, 2, 2), (w.dtype, w.shape)\n"
       "assert (w.ravel() == np.arange(24, dtype=np.float32) * 0.5 - 3).all()\n"
       "assert b.shape == (2,) and b[0] == -1.5 and b[1] == 2.25\n"
       "print('ok')\n",
       path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
}

}  // namespace
}  // namespace convoy
