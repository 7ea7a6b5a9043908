// Command-line flags for the example programs: each flag is registered once with a default and a
// help line, so --help always documents exactly the flags a program reads. Accepts "--name value"
// and
// "--name=value"; lists are comma-separated ("--widths 256,1024"). Header-only:
// examples/CMakeLists.txt builds one executable per examples/*.cpp and nothing else.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace examples {

/// A bad command line: unknown flag, missing value, or a value of the wrong type or range.
class FlagError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Flags {
  public:
    Flags(std::string program, std::string description)
        : program_(std::move(program)), description_(std::move(description)) {}

    /// A flag that takes a value. `value_name` shows in --help ("N", "LIST", "PATH").
    Flags& add(const std::string& name, const std::string& default_value, const std::string& help,
               const std::string& value_name = "VALUE") {
        register_flag(name, Spec{default_value, help, value_name, false});
        return *this;
    }
    /// A flag without a value: false unless given ("--name" or "--name=true|false").
    Flags& add_switch(const std::string& name, const std::string& help) {
        register_flag(name, Spec{"false", help, "", true});
        return *this;
    }
    /// Free text printed after the flags in --help (e.g. the columns of a CSV file).
    Flags& add_section(const std::string& title, const std::string& text) {
        sections_.push_back({title, text});
        return *this;
    }

    /// Parses argv. Returns false when --help was given (nothing else is checked then); throws
    /// FlagError for an unknown flag, a missing value or a positional argument.
    bool parse(int argc, const char* const* argv) {
        for (int i = 1; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "--help" || arg == "-h") return false;
            if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
                throw FlagError("unexpected argument '" + arg + "' (flags look like --name value)");
            }
            std::string name = arg.substr(2);
            std::string value;
            bool has_value = false;
            if (const auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
                has_value = true;
            }
            auto it = specs_.find(name);
            if (it == specs_.end()) throw FlagError("unknown flag --" + name + " (see --help)");
            if (it->second.is_switch) {
                if (!has_value) value = "true";
                if (value != "true" && value != "false") {
                    throw FlagError("--" + name + ": expected true or false, got '" + value + "'");
                }
            } else if (!has_value) {
                if (i + 1 >= argc) throw FlagError("--" + name + ": missing value");
                value = argv[++i];
            }
            values_[name] = value;
        }
        return true;
    }

    /// parse(), for main(): prints --help and exits 0, or prints the error and exits 2.
    void parse_or_exit(int argc, const char* const* argv) {
        try {
            if (!parse(argc, argv)) {
                std::fputs(help().c_str(), stdout);
                std::exit(0);
            }
        } catch (const FlagError& e) {
            std::fprintf(stderr, "%s: %s\n", program_.c_str(), e.what());
            std::exit(2);
        }
    }

    std::string help() const {
        std::ostringstream out;
        out << "usage: " << program_ << " [--flag value ...]\n\n" << description_ << "\n\nflags:\n";
        std::vector<std::string> lefts;
        std::size_t width = 0;
        for (const auto& name : order_) {
            const Spec& s = specs_.at(name);
            lefts.push_back("  --" + name + (s.is_switch ? "" : " " + s.value_name));
            width = std::max(width, lefts.back().size());
        }
        lefts.push_back("  --help");
        for (std::size_t k = 0; k < order_.size(); ++k) {
            const Spec& s = specs_.at(order_[k]);
            std::string text = s.help;
            if (!s.is_switch) {
                // The default goes on its own line when the help's last line is already long.
                const std::string def = "[default: " + (s.def.empty() ? "none" : s.def) + "]";
                const std::size_t nl = text.rfind('\n');
                const std::size_t last_line = text.size() - (nl == std::string::npos ? 0 : nl + 1);
                text += (width + 2 + last_line + def.size() >= 100 ? "\n" : " ") + def;
            }
            out << pad(lefts[k], width + 2) << indent(text, width + 2) << "\n";
        }
        out << pad(lefts.back(), width + 2) << "print this text and exit\n";
        for (const auto& [title, text] : sections_) out << "\n" << title << ":\n" << text << "\n";
        return out.str();
    }

    /// True when the flag was on the command line (not just its default).
    bool given(const std::string& name) const { return values_.count(spec(name)) > 0; }

    const std::string& get_string(const std::string& name) const {
        const std::string& key = spec(name);
        auto it = values_.find(key);
        return it != values_.end() ? it->second : specs_.at(key).def;
    }
    bool get_bool(const std::string& name) const { return get_string(name) == "true"; }
    std::int64_t get_int(const std::string& name, std::int64_t min_value = INT64_MIN) const {
        return to_int(name, get_string(name), min_value);
    }
    double get_double(const std::string& name, double min_value = -HUGE_VAL) const {
        return to_double(name, get_string(name), min_value);
    }
    /// The value, which must be one of `choices`.
    std::string get_choice(const std::string& name, const std::vector<std::string>& choices) const {
        const std::string& v = get_string(name);
        check_choice(name, v, choices);
        return v;
    }
    /// Comma-separated items; empty items are errors, an empty value is an empty list.
    std::vector<std::string> get_list(const std::string& name) const {
        std::vector<std::string> items;
        const std::string& v = get_string(name);
        if (v.empty()) return items;
        std::size_t start = 0;
        while (true) {
            const std::size_t comma = v.find(',', start);
            items.push_back(v.substr(start, comma - start));
            if (items.back().empty()) throw FlagError("--" + name + ": empty item in '" + v + "'");
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
        return items;
    }
    std::vector<std::int64_t> get_int_list(const std::string& name,
                                           std::int64_t min_value = INT64_MIN) const {
        std::vector<std::int64_t> out;
        for (const auto& item : get_list(name)) out.push_back(to_int(name, item, min_value));
        return out;
    }
    std::vector<double> get_double_list(const std::string& name,
                                        double min_value = -HUGE_VAL) const {
        std::vector<double> out;
        for (const auto& item : get_list(name)) out.push_back(to_double(name, item, min_value));
        return out;
    }
    /// A list whose items must each be one of `choices` (e.g. --methods ngd,gd).
    std::vector<std::string> get_choice_list(const std::string& name,
                                             const std::vector<std::string>& choices) const {
        auto items = get_list(name);
        for (const auto& item : items) check_choice(name, item, choices);
        return items;
    }

    /// Every flag and its value, one "--name value" per entry: for logs and CSV provenance.
    std::string summary() const {
        std::string out;
        for (const auto& name : order_) {
            out += (out.empty() ? "--" : " --") + name + " " + get_string(name);
        }
        return out;
    }

  private:
    struct Spec {
        std::string def, help, value_name;
        bool is_switch = false;
    };

    void register_flag(const std::string& name, Spec s) {
        if (name.empty() || name == "help" || specs_.count(name)) {
            throw std::logic_error("Flags: flag --" + name + " registered twice or reserved");
        }
        specs_[name] = std::move(s);
        order_.push_back(name);
    }
    // Asking for an unregistered flag is a bug in the program, not in the command line.
    const std::string& spec(const std::string& name) const {
        auto it = specs_.find(name);
        if (it == specs_.end()) throw std::logic_error("Flags: flag --" + name + " not registered");
        return it->first;
    }
    static std::int64_t to_int(const std::string& name, const std::string& v, std::int64_t lo) {
        errno = 0;
        char* end = nullptr;
        const long long x = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || errno == ERANGE) {
            throw FlagError("--" + name + ": expected an integer, got '" + v + "'");
        }
        if (x < lo) {
            throw FlagError("--" + name + ": must be >= " + std::to_string(lo) + ", got " + v);
        }
        return x;
    }
    static double to_double(const std::string& name, const std::string& v, double lo) {
        errno = 0;
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x)) {
            throw FlagError("--" + name + ": expected a finite number, got '" + v + "'");
        }
        if (x < lo) {
            std::ostringstream s;
            s << "--" << name << ": must be >= " << lo << ", got " << v;
            throw FlagError(s.str());
        }
        return x;
    }
    static void check_choice(const std::string& name, const std::string& v,
                             const std::vector<std::string>& choices) {
        std::string all;
        for (const auto& c : choices) {
            if (c == v) return;
            all += (all.empty() ? "" : "|") + c;
        }
        throw FlagError("--" + name + ": expected one of " + all + ", got '" + v + "'");
    }
    static std::string pad(const std::string& s, std::size_t width) {
        return s.size() >= width ? s + "  " : s + std::string(width - s.size(), ' ');
    }
    // Continuation lines of a help text line up under its first line.
    static std::string indent(const std::string& text, std::size_t width) {
        std::string out;
        for (char c : text) {
            out += c;
            if (c == '\n') out += std::string(width, ' ');
        }
        return out;
    }

    std::string program_, description_;
    std::map<std::string, Spec> specs_;
    std::vector<std::string> order_;
    std::map<std::string, std::string> values_;
    std::vector<std::pair<std::string, std::string>> sections_;
};

}  // namespace examples
