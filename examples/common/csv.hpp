// CsvWriter: one header line, then rows with exactly as many cells as the header has columns, so a
// plotting script can trust the file's shape. Floating-point cells are written with enough digits
// to read back the same value (17 significant digits for double, 9 for float). Each row is flushed,
// so an interrupted run still leaves every finished row on disk.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace examples {

class CsvWriter {
  public:
    /// Creates (or truncates) `path`, creating its parent folders, and writes the header.
    /// Throws std::runtime_error when the file cannot be written.
    CsvWriter(const std::string& path, std::vector<std::string> columns)
        : path_(path), columns_(std::move(columns)) {
        if (columns_.empty()) throw std::logic_error("CsvWriter: no columns for " + path);
        const std::filesystem::path parent = std::filesystem::path(path).parent_path();
        std::error_code ec;
        if (!parent.empty()) std::filesystem::create_directories(parent, ec);
        out_.open(path, std::ios::out | std::ios::trunc);
        if (!out_) throw std::runtime_error("CsvWriter: cannot open '" + path + "' for writing");
        write_line(columns_);
    }

    /// One row; the cells are strings, integers, floating-point numbers or bools, one per column.
    template <class... Cells>
    void row(const Cells&... cells) {
        row_cells({format(cells)...});
    }
    /// One row from already formatted cells.
    void row_cells(const std::vector<std::string>& cells) {
        if (cells.size() != columns_.size()) {
            throw std::logic_error("CsvWriter: row with " + std::to_string(cells.size()) +
                                   " cells for " + std::to_string(columns_.size()) +
                                   " columns in " + path_);
        }
        write_line(cells);
        ++rows_;
    }

    const std::string& path() const { return path_; }
    const std::vector<std::string>& columns() const { return columns_; }
    std::int64_t rows_written() const { return rows_; }

    template <class V>
    static std::string format(const V& v) {
        if constexpr (std::is_same_v<V, bool>) {
            return v ? "true" : "false";
        } else if constexpr (std::is_floating_point_v<V>) {
            char buf[40];
            std::snprintf(buf, sizeof buf, "%.*g", std::is_same_v<V, float> ? 9 : 17,
                          static_cast<double>(v));
            return buf;
        } else if constexpr (std::is_integral_v<V>) {
            return std::to_string(v);
        } else {
            return std::string(v);
        }
    }

  private:
    // RFC 4180 quoting: only cells holding a comma, a quote or a line break are quoted.
    static std::string quote(const std::string& cell) {
        if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
        std::string q = "\"";
        for (char c : cell) q += (c == '"') ? std::string("\"\"") : std::string(1, c);
        return q + "\"";
    }
    void write_line(const std::vector<std::string>& cells) {
        for (std::size_t i = 0; i < cells.size(); ++i) out_ << (i ? "," : "") << quote(cells[i]);
        out_ << '\n';
        out_.flush();
        if (!out_) throw std::runtime_error("CsvWriter: writing '" + path_ + "' failed");
    }

    std::string path_;
    std::vector<std::string> columns_;
    std::ofstream out_;
    std::int64_t rows_ = 0;
};

}  // namespace examples
