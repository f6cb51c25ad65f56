// IDX files and MNIST directories: good files (plain and gzip), and each kind of bad one.
#include "core/idx_reader.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <zlib.h>

#include <filesystem>

#include "core/error.h"
#include "core/mnist.h"
#include "testing/error_of.h"
#include "testing/idx_files.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::gzip;
using testing::idx_images;
using testing::idx_labels;
using testing::TempDir;

using testing::error_of;

TEST(IdxReader, ReadsPlainAndGzipIdentically) {
  TempDir dir;
  const std::string bytes = idx_images(3, 4, 5);
  const IdxArray plain = read_idx(dir.write("a", bytes), kIdxImagesMagic);
  const IdxArray zipped = read_idx(dir.write("a.gz", gzip(bytes)), kIdxImagesMagic);
  EXPECT_EQ(plain.dims, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(plain.data.size(), 60u);
  EXPECT_EQ(plain.data[59], 59);
  EXPECT_EQ(plain.dims, zipped.dims);
  EXPECT_EQ(plain.data, zipped.data);
}

TEST(IdxReader, WrongMagic) {
  TempDir dir;
  const std::string path = dir.write("labels", idx_labels({1, 2}));
  EXPECT_EQ(error_of([&] { read_idx(path, kIdxImagesMagic); }),
            "'" + path + "': wrong IDX magic 2049 (expected 2051, an IDX images file)");
}

TEST(IdxReader, TruncatedAndOversizedData) {
  TempDir dir;
  const std::string bytes = idx_images(3, 4, 5);
  const std::string cut = dir.write("cut", bytes.substr(0, bytes.size() - 7));
  EXPECT_EQ(error_of([&] { read_idx(cut, kIdxImagesMagic); }),
            "'" + cut + "': truncated IDX file: the header promises 60 data bytes, found 53");
  const std::string extra = dir.write("extra", bytes + "xy");
  EXPECT_NE(error_of([&] { read_idx(extra, kIdxImagesMagic); }).find("oversized"),
            std::string::npos);
  const std::string header = dir.write("header", bytes.substr(0, 9));
  EXPECT_EQ(error_of([&] { read_idx(header, kIdxImagesMagic); }),
            "'" + header + "': truncated IDX header");
  const std::string tiny = dir.write("tiny", "ab");
  EXPECT_NE(error_of([&] { read_idx(tiny, kIdxImagesMagic); }).find("too short"),
            std::string::npos);
}

// A valid header for 10 images of 28x28 followed by 256 MiB of zeros compresses to a few hundred
// KiB. It must be refused after reading one byte past the promised data, not after decompressing
// all of it: the test's peak memory may not grow by more than 64 MiB.
TEST(IdxReader, GzipBombIsRefusedWithoutDecompressingIt) {
  TempDir dir;
  const std::string path = dir.file("bomb-images-idx3-ubyte.gz");
  {
    gzFile out = gzopen(path.c_str(), "wb1");
    ASSERT_NE(out, nullptr);
    const std::string header = idx_images(10, 28, 28).substr(0, 16);
    gzwrite(out, header.data(), static_cast<unsigned>(header.size()));
    const std::string zeros(1 << 20, '\0');
    for (int i = 0; i < 256; ++i) gzwrite(out, zeros.data(), static_cast<unsigned>(zeros.size()));
    gzclose(out);
  }
  ASSERT_LT(std::filesystem::file_size(path), 2u << 20);
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  const std::string error = error_of([&] { read_idx(path, kIdxImagesMagic); });
  getrusage(RUSAGE_SELF, &after);
  EXPECT_NE(error.find("oversized IDX file: the header promises 7840 data bytes"),
            std::string::npos)
      << error;
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "KiB of peak memory growth";
}

TEST(IdxReader, HeaderPromisingMoreThanTheLimitIsRefused) {
  TempDir dir;
  std::string header = idx_images(1, 1, 1).substr(0, 16);
  for (int at : {4, 8, 12}) header[static_cast<size_t>(at)] = '\x7f';  // 3 extents near 2^31
  const std::string error = error_of([&] { read_idx(dir.write("huge", header), kIdxImagesMagic); });
  EXPECT_NE(error.find("promises more than 4 GiB"), std::string::npos) << error;
}

TEST(IdxReader, TruncatedGzipStream) {
  TempDir dir;
  const std::string zipped = gzip(idx_images(50, 28, 28));
  const std::string path = dir.write("cut.gz", zipped.substr(0, zipped.size() / 2));
  const std::string e = error_of([&] { read_idx(path, kIdxImagesMagic); });
  EXPECT_NE(e.find("'" + path + "': truncated"), std::string::npos) << e;
  EXPECT_NE(e.find("gzip"), std::string::npos) << e;
  // The trailer alone missing (data complete, CRC and length gone).
  const std::string no_trailer = dir.write("trailer.gz", zipped.substr(0, zipped.size() - 8));
  EXPECT_NE(error_of([&] { read_idx(no_trailer, kIdxImagesMagic); }).find("gzip"),
            std::string::npos);
}

TEST(IdxReader, MissingFile) {
  EXPECT_NE(error_of([] {
              read_idx("/nonexistent/x", kIdxImagesMagic);
            }).find("'/nonexistent/x': cannot open"),
            std::string::npos);
}

struct MnistDir {
  TempDir dir;
  void write(const std::string& train_images, const std::string& train_labels) {
    dir.write("train-images-idx3-ubyte.gz", gzip(train_images));
    dir.write("train-labels-idx1-ubyte", train_labels);  // one plain, one compressed
  }
};

TEST(Mnist, LoadsAndScalesPixels) {
  MnistDir m;
  m.write(idx_images(2, 2, 3, 250), idx_labels({9, 0}));
  const Dataset d = load_mnist(m.dir.path(), "fashion-mnist", Split::kTrain);
  EXPECT_EQ(d.count(), 2);
  EXPECT_EQ(d.shape.str(), "1x2x3");
  EXPECT_EQ(d.pixels.size(), 12u);  // held as the file's bytes, converted per batch
  const std::vector<float> first = d.sample(0), second = d.sample(1);
  EXPECT_FLOAT_EQ(first[0], 250.f / 255.f);
  EXPECT_FLOAT_EQ(first[5], 255.f / 255.f);  // 250 + 5
  EXPECT_FLOAT_EQ(second[0], 0.f);           // 250 + 6 wraps to 0 in a byte
  EXPECT_EQ(d.labels, (std::vector<int32_t>{9, 0}));
  EXPECT_EQ(d.class_names[9], "Ankle boot");
}

TEST(Mnist, CountMismatchAndBadLabel) {
  MnistDir m;
  m.write(idx_images(3, 2, 2), idx_labels({1, 2}));
  EXPECT_NE(error_of([&] {
              load_mnist(m.dir.path(), "mnist", Split::kTrain);
            }).find("holds 3 images but"),
            std::string::npos);
  MnistDir bad;
  bad.write(idx_images(2, 2, 2), idx_labels({1, 10}));
  EXPECT_NE(error_of([&] {
              load_mnist(bad.dir.path(), "mnist", Split::kTrain);
            }).find("label 10 of sample 1 is not below the number of classes (10)"),
            std::string::npos);
}

TEST(Mnist, MissingDirectoryAndFiles) {
  EXPECT_EQ(error_of([] { load_mnist("/nonexistent/data", "mnist", Split::kTrain); }),
            "data directory '/nonexistent/data' does not exist");
  MnistDir m;
  m.write(idx_images(1, 2, 2), idx_labels({1}));
  EXPECT_EQ(
      error_of([&] { load_mnist(m.dir.path(), "mnist", Split::kTest); }),
      "'" + m.dir.path() + "' has neither t10k-images-idx3-ubyte nor t10k-images-idx3-ubyte.gz");
}

}  // namespace
}  // namespace convoy
