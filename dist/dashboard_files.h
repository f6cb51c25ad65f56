// The dashboard's static files (dist/dashboard/), embedded in the binary at build time by
// dist/dashboard/embed.cmake.
#pragma once

#include <span>
#include <string_view>

namespace convoy {

struct EmbeddedFile {
  std::string_view path;  // "/index.html"
  std::string_view content_type;
  std::string_view body;
};

std::span<const EmbeddedFile> dashboard_files();

}  // namespace convoy
