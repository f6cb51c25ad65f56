// The CIFAR-10 and .npy readers on small files written here: good files (the .npy ones written by
// NumPy itself, an independent writer) and each bad case, which must be one clear Error.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/cifar10.h"
#include "core/error.h"
#include "core/npy_dataset.h"
#include "core/npy_reader.h"
#include "testing/error_of.h"
#include "testing/run_command.h"
#include "testing/temp_dir.h"

namespace convoy {
namespace {

using testing::TempDir;

using testing::error_of;

// "'<path>'", as error messages quote files.
std::string quoted(const std::string& path) {
  return fmt::format("'{}'", path);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Runs NumPy (Debian's python3-numpy) with `code`; `dir` is sys.argv[1].
void numpy(const std::string& code, const std::string& dir) {
  const testing::CommandResult r = testing::run_command(
      {"/usr/bin/python3", "-c", "import numpy as np, sys, os\nd = sys.argv[1]\n" + code, dir}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// One CIFAR-10 record: label, then 1,024 bytes per channel.
std::string cifar_record(unsigned char label, unsigned char r, unsigned char g, unsigned char b) {
  std::string record(1, static_cast<char>(label));
  for (unsigned char v : {r, g, b}) record += std::string(1024, static_cast<char>(v));
  return record;
}

TEST(Cifar10, ReadsRecordsNormalizesPerChannelAndRefusesPartialRecords) {
  TempDir dir;
  for (int i = 1; i <= 5; ++i) {
    write_bytes(
        dir.file("data_batch_" + std::to_string(i) + ".bin"),
        cifar_record(static_cast<unsigned char>(i), 255, 0, 128) + cifar_record(9, 0, 0, 0));
  }
  write_bytes(dir.file("test_batch.bin"), cifar_record(3, 51, 102, 204));
  const Dataset train = load_cifar10(dir.path(), Split::kTrain);
  EXPECT_EQ(train.count(), 10);
  EXPECT_EQ(train.shape.str(), "3x32x32");
  EXPECT_EQ(train.labels[0], 1);
  EXPECT_EQ(train.labels[1], 9);
  EXPECT_EQ(train.labels[8], 5);
  EXPECT_EQ(train.class_names[0], "airplane");
  const std::vector<float> first = train.sample(0);
  EXPECT_NEAR(first[0], (1.0 - 0.4914) / 0.2470, 1e-5);             // red plane
  EXPECT_NEAR(first[1024], (0.0 - 0.4822) / 0.2435, 1e-5);          // green plane
  EXPECT_NEAR(first[3071], (128 / 255.0 - 0.4465) / 0.2616, 1e-5);  // blue plane
  const Dataset test = load_cifar10(dir.path(), Split::kTest);
  ASSERT_EQ(test.count(), 1);
  EXPECT_EQ(test.labels[0], 3);

  write_bytes(dir.file("test_batch.bin"), cifar_record(3, 1, 2, 3) + "extra");
  EXPECT_EQ(error_of([&] { load_cifar10(dir.path(), Split::kTest); }),
            quoted(dir.file("test_batch.bin")) +
                ": 3078 bytes is not a whole number of 3073-byte CIFAR-10 records");
  write_bytes(dir.file("test_batch.bin"), cifar_record(10, 1, 2, 3));
  EXPECT_NE(
      error_of([&] { load_cifar10(dir.path(), Split::kTest); }).find("label 10, not below 10"),
      std::string::npos);
  std::filesystem::remove(dir.file("data_batch_4.bin"));
  EXPECT_EQ(error_of([&] { load_cifar10(dir.path(), Split::kTrain); }),
            fmt::format("'{}' is missing", dir.file("data_batch_4.bin")));
}

TEST(Npy, ReadsWhatNumpyWritesInEveryRank) {
  TempDir dir;
  numpy(
      "for split, n in (('train', 6), ('test', 4)):\n"
      "    x = np.arange(n * 2 * 5, dtype=np.float32).reshape(n, 2, 5) / 10\n"
      "    np.save(os.path.join(d, split + '_x.npy'), x)\n"
      "    np.save(os.path.join(d, split + '_y.npy'), np.arange(n) % 3)\n"  // int64
      "np.save(os.path.join(d, 'u8.npy'), np.arange(2*3*4*5*6, "
      "dtype=np.uint8).reshape(2,3,4,5,6))\n"
      "np.save(os.path.join(d, 'i32.npy'), np.array([7, -2, 5], dtype=np.int32))\n",
      dir.path());
  const Dataset train = load_npy_dataset(dir.path(), Split::kTrain, 3);
  EXPECT_EQ(train.count(), 6);
  EXPECT_EQ(train.shape.str(), "2x5");
  EXPECT_FLOAT_EQ(train.sample(1)[3], 1.3f);  // element 13 of the array, / 10
  EXPECT_EQ(train.labels, (std::vector<int32_t>{0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(load_npy_dataset(dir.path(), Split::kTest, 3).count(), 4);

  const NpyArray volume = read_npy(dir.file("u8.npy"), NpyKind::kFloat);
  EXPECT_EQ(volume.shape, (std::vector<int64_t>{2, 3, 4, 5, 6}));
  EXPECT_FLOAT_EQ(volume.values[200], 200 / 255.f);
  EXPECT_EQ(read_npy(dir.file("i32.npy"), NpyKind::kInteger).integers,
            (std::vector<int64_t>{7, -2, 5}));
}

TEST(Npy, EveryBadFileIsOneClearError) {
  TempDir dir;
  numpy(
      "np.save(os.path.join(d, 'f64.npy'), np.zeros((2, 1, 3)))\n"
      "np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(np.zeros((2, 1, 3), "
      "np.float32)))\n"
      "np.save(os.path.join(d, 'good.npy'), np.zeros((4, 1, 8), np.float32))\n"
      "np.save(os.path.join(d, 'flat.npy'), np.zeros(8, np.float32))\n"
      "np.save(os.path.join(d, 'labels2d.npy'), np.zeros((4, 1), np.int64))\n"
      "np.save(os.path.join(d, 'labels3.npy'), np.array([0, 1, 2], np.int64))\n"
      "np.save(os.path.join(d, 'labels_big.npy'), np.array([0, 1, 7, 1], np.int64))\n"
      "np.save(os.path.join(d, 'labels_f.npy'), np.zeros(4, np.float32))\n",
      dir.path());
  const auto read = [&](const std::string& name, NpyKind kind) {
    return error_of([&] { read_npy(dir.file(name), kind); });
  };
  EXPECT_EQ(
      read("f64.npy", NpyKind::kFloat),
      quoted(dir.file("f64.npy")) + ": dtype '<f8' is not supported here (want uint8 or float32)");
  EXPECT_EQ(read("labels_f.npy", NpyKind::kInteger),
            quoted(dir.file("labels_f.npy")) +
                ": dtype '<f4' is not supported here (want an integer type)");
  EXPECT_NE(read("fortran.npy", NpyKind::kFloat).find("is in Fortran order"), std::string::npos);

  const std::string good = testing::read_file(dir.file("good.npy"));
  write_bytes(dir.file("short_body.npy"), good.substr(0, good.size() - 4));
  EXPECT_NE(
      read("short_body.npy", NpyKind::kFloat).find("the body has 124 bytes but shape (4, 1, 8)"),
      std::string::npos);
  // A shape whose byte count wraps around 2^64 to 0, with an empty body: refused, not allocated.
  const size_t header_length =
      static_cast<unsigned char>(good[8]) | size_t{static_cast<unsigned char>(good[9])} << 8;
  std::string huge = good.substr(0, 10 + header_length);
  huge.replace(huge.find("(4, 1, 8)"), 9, "(4611686018427387904, 1, 128)");
  huge.erase(huge.rfind('\n') - 20, 20);  // the same header length: less padding
  write_bytes(dir.file("overflow.npy"), huge);
  EXPECT_EQ(read("overflow.npy", NpyKind::kFloat),
            quoted(dir.file("overflow.npy")) +
                ": npy shape (4611686018427387904, 1, 128) is larger than any array can be");
  // The same with a zero extent: an empty array, but its other extents would overflow every later
  // product (found by fuzzing).
  huge.replace(huge.find("(4611686018427387904, 1, 128)"), 29, "(0, 4611686018427387904, 128)");
  write_bytes(dir.file("overflow.npy"), huge);
  EXPECT_EQ(read("overflow.npy", NpyKind::kFloat),
            quoted(dir.file("overflow.npy")) +
                ": npy shape (0, 4611686018427387904, 128) is larger than any array can be");
  write_bytes(dir.file("short_header.npy"), good.substr(0, 40));
  EXPECT_EQ(read("short_header.npy", NpyKind::kFloat),
            quoted(dir.file("short_header.npy")) + ": npy header is truncated");
  // Headers longer than NumPy's own limit are refused before they are read; values with trailing
  // text, malformed shapes and an unknown minor version are refused.
  const auto with_header = [&](const std::string& name, const std::string& header, char minor = 0) {
    std::string bytes = std::string("\x93NUMPY\x02", 7) + minor;
    const auto n = static_cast<uint32_t>(header.size());
    for (int i = 0; i < 4; ++i) bytes += static_cast<char>(n >> (8 * i) & 0xff);
    write_bytes(dir.file(name), bytes + header + std::string(32, '\0'));
  };
  with_header("long_header.npy", "{'descr': '<f4" + std::string(20000, 'a') + "'}");
  EXPECT_EQ(read("long_header.npy", NpyKind::kFloat),
            quoted(dir.file("long_header.npy")) +
                ": npy header of 20016 bytes is longer than 10000 (NumPy's own limit)");
  const std::string ok_fields = "'fortran_order': False, 'shape': (8,), }";
  with_header("descr_junk.npy", "{'descr': '<f4'x, " + ok_fields);
  EXPECT_EQ(read("descr_junk.npy", NpyKind::kFloat),
            quoted(dir.file("descr_junk.npy")) + ": npy header has no 'descr'");
  with_header("falsey.npy", "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (8,), }");
  EXPECT_EQ(read("falsey.npy", NpyKind::kFloat),
            quoted(dir.file("falsey.npy")) + ": npy header has no 'fortran_order'");
  for (const std::string shape : {"(5x,)", "(5,,3)", "(99999999999999999999,)"}) {
    with_header("shape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + "}");
    EXPECT_EQ(read("shape.npy", NpyKind::kFloat),
              quoted(dir.file("shape.npy")) + ": npy shape " + shape + " is malformed");
  }
  with_header("minor.npy", "{'descr': '<f4', " + ok_fields, 1);
  EXPECT_EQ(read("minor.npy", NpyKind::kFloat),
            quoted(dir.file("minor.npy")) +
                ": npy format version 2.1 is not supported (1.0, 2.0 or 3.0)");
  write_bytes(dir.file("not.npy"), "hello, this is text");
  EXPECT_NE(read("not.npy", NpyKind::kFloat).find("not a NumPy .npy file"), std::string::npos);

  // Whole data sets: wrong rank, labels not 1-D, counts that differ, labels out of range.
  const auto dataset_error = [&](const std::string& x, const std::string& y) {
    std::filesystem::copy_file(dir.file(x), dir.file("train_x.npy"),
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(dir.file(y), dir.file("train_y.npy"),
                               std::filesystem::copy_options::overwrite_existing);
    return error_of([&] { load_npy_dataset(dir.path(), Split::kTrain, 3); });
  };
  EXPECT_NE(dataset_error("flat.npy", "labels3.npy").find("is not N x C x L"), std::string::npos);
  EXPECT_NE(dataset_error("good.npy", "labels2d.npy").find("labels must be one-dimensional"),
            std::string::npos);
  EXPECT_NE(dataset_error("good.npy", "labels3.npy").find("holds 4 samples but"),
            std::string::npos);
  EXPECT_NE(dataset_error("good.npy", "labels_big.npy")
                .find("label 7 of sample 2 is not in [0, 3) (the model's classes)"),
            std::string::npos);
  std::filesystem::remove(dir.file("train_y.npy"));
  EXPECT_EQ(error_of([&] { load_npy_dataset(dir.path(), Split::kTrain, 3); }),
            fmt::format("'{}' is missing", dir.file("train_y.npy")));
}

}  // namespace
}  // namespace convoy
