// Runtime channel management kept across restarts: the changes made to the registry through the
// engine (channels added, fields changed, channels removed, enabled or disabled) as an overlay on top
// of the channel lists a host loads. The engine records each change here and writes the overlay to
// EngineSettings::state_file; on every load (and at construction) it applies the overlay again, so
// whatever the lists say, the operator's changes win. apply() is idempotent: applying it twice, or
// after a list was loaded again, gives the same registry.
#pragma once

#include <hlsrelay/channel.hpp>
#include <hlsrelay/registry.hpp>
#include <hlsrelay/stream_id.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hlsrelay {

// The state file's format version ({"hlsrelay_state": 1, ...}).
inline constexpr int kStateFormat = 1;

// A client's change of a channel (HTTP PATCH, hlsrelay_channel_update): a JSON merge patch (RFC 7396)
// over the channel's JSON (to_json with sources): null removes a field (or a header), objects merge,
// and giving "url" or "urls" replaces all sources.
inline nlohmann::json apply_channel_patch(nlohmann::json channel, const nlohmann::json& patch) {
    if (patch.contains("url") || patch.contains("urls")) {  // two spellings of one field
        channel.erase("url");
        channel.erase("urls");
    }
    channel.merge_patch(patch);
    return channel;
}

class ChannelOverlay {
public:
    bool empty() const { return added_.empty() && changed_.empty() && removed_.empty(); }

    // A channel added at runtime, as stored (its final id): the overlay holds all of it.
    void record_add(const ChannelConfig& c) {
        set_added(c.id, to_json(c, true));
        changed_.erase(c.id);
    }

    // A channel changed from `before` to `after` (same id): an added channel is replaced whole; for a
    // channel of a list, the fields that differ are kept (a field gone is kept as null: unset).
    void record_update(const ChannelConfig& before, const ChannelConfig& after) {
        const std::string& id = after.id;
        if (find_added(id)) return set_added(id, to_json(after, true));
        const nlohmann::json b = to_json(before, true), a = to_json(after, true);
        nlohmann::json& patch = changed_[id];
        if (!patch.is_object()) patch = nlohmann::json::object();
        for (const auto& [key, value] : a.items())
            if (key != "id" && (!b.contains(key) || b[key] != value)) patch[key] = value;
        for (const auto& [key, value] : b.items())
            if (key != "id" && !a.contains(key)) patch[key] = nullptr;
        if (patch.empty()) changed_.erase(id);
    }

    // A channel removed: forgotten if the overlay added it, else kept out of every list loaded.
    void record_remove(const std::string& id) {
        changed_.erase(id);
        const auto it = std::find_if(added_.begin(), added_.end(), [&](const auto& e) { return e.first == id; });
        if (it != added_.end()) {
            added_.erase(it);  // a list's channel removed earlier and added again stays removed too
            return;
        }
        removed_.insert(id);
    }

    // Whether a list's channel of this id yields to the overlay (the overlay added or removed it): a
    // loader skips it.
    bool owns(std::string_view id) const { return find_added(id) || removed_.count(std::string(id)) > 0; }

    // Applies the overlay to `registry`: removed ids go, added channels are put in (replacing a
    // channel of the same id), changed fields are set. Idempotent. What cannot be applied (an entry
    // the loaders now refuse) is reported, the rest still applies; the overlay keeps the entry.
    std::vector<LoadIssue> apply(Registry& registry) const {
        std::vector<LoadIssue> issues;
        auto problem = [&](const std::string& id, const std::string& why) {
            issues.push_back({0, "state: channel '" + id + "': " + why});
        };
        for (const std::string& id : removed_)
            if (!find_added(id)) registry.remove(id);
        for (const auto& [id, entry] : added_) {
            try {
                std::vector<std::string> warnings;
                ChannelConfig c = detail::channel_from_json(entry, warnings);
                c.id = id;
                if (const ChannelConfig* current = registry.find_id(id)) {
                    if (!(*current == c)) registry.update(id, std::move(c));
                } else {
                    registry.add(std::move(c));
                }
            } catch (const detail::EntrySkipped& e) {
                problem(id, e.message);
            } catch (const std::exception& e) {
                problem(id, e.what());
            }
        }
        for (const auto& [id, patch] : changed_) {
            const ChannelConfig* current = registry.find_id(id);
            if (!current) continue;  // not in the lists loaded (yet)
            try {
                std::vector<std::string> warnings;
                ChannelConfig c = detail::channel_from_json(merge(to_json(*current, true), patch), warnings);
                c.id = id;
                if (!(*current == c)) registry.update(id, std::move(c));
            } catch (const detail::EntrySkipped& e) {
                problem(id, e.message);
            } catch (const std::exception& e) {
                problem(id, e.what());
            }
        }
        return issues;
    }

    // A channel's JSON (to_json with sources) with the recorded fields set: "url" and "urls" replace
    // each other, null unsets a field, objects (headers, attributes) are replaced whole (what
    // record_update's field differences need; a client's patch is a merge patch: apply_channel_patch).
    static nlohmann::json merge(nlohmann::json base, const nlohmann::json& patch) {
        for (const auto& [key, value] : patch.items()) {
            if (key == "url") base.erase("urls");
            if (key == "urls") base.erase("url");
            base[key] = value;
        }
        return base;
    }

    std::string to_text() const {
        nlohmann::json j;  // keys sorted: "added", "changed", "hlsrelay_state", "removed"
        j["hlsrelay_state"] = kStateFormat;
        nlohmann::json added = nlohmann::json::array();
        for (const auto& [id, entry] : added_) added.push_back(entry);
        j["added"] = std::move(added);
        j["changed"] = nlohmann::json::object();
        for (const auto& [id, patch] : changed_) j["changed"][id] = patch;
        j["removed"] = removed_;
        return dump_json(j, 2) + "\n";
    }

    // Reads a state file's text; throws std::invalid_argument saying what is wrong. Entries are
    // checked for shape here and for content when applied.
    static ChannelOverlay from_text(std::string_view text) {
        auto bad = [](const std::string& why) -> std::invalid_argument { return std::invalid_argument(why); };
        nlohmann::json doc;
        try {
            doc = nlohmann::json::parse(text.begin(), text.end());
        } catch (const std::exception& e) {
            throw bad(std::string("invalid JSON: ") + detail::repair_utf8(e.what()));
        }
        if (!doc.is_object() || !doc.contains("hlsrelay_state")) throw bad("not an hlsrelay state file (no \"hlsrelay_state\")");
        if (doc["hlsrelay_state"] != kStateFormat)
            throw bad("format " + detail::repair_utf8(doc["hlsrelay_state"].dump()) + " is not " + std::to_string(kStateFormat));
        ChannelOverlay o;
        auto id_of = [&](const nlohmann::json& v, const char* where) {
            if (!v.is_string() || !is_safe_slug(v.get<std::string>()))
                throw bad(std::string(where) + ": an id is not a safe stream id");
            return v.get<std::string>();
        };
        if (const auto it = doc.find("added"); it != doc.end()) {
            if (!it->is_array()) throw bad("\"added\" must be an array of channels");
            for (const nlohmann::json& entry : *it) {
                if (!entry.is_object() || !entry.contains("id")) throw bad("\"added\": an entry is not a channel with an id");
                const std::string id = id_of(entry["id"], "\"added\"");
                if (o.find_added(id)) throw bad("\"added\": id '" + id + "' appears twice");
                o.added_.emplace_back(id, entry);
            }
        }
        if (const auto it = doc.find("changed"); it != doc.end()) {
            if (!it->is_object()) throw bad("\"changed\" must be an object of id: fields");
            for (const auto& [id, patch] : it->items()) {
                id_of(nlohmann::json(id), "\"changed\"");
                if (!patch.is_object()) throw bad("\"changed\": the entry of '" + id + "' is not an object");
                o.changed_[id] = patch;
            }
        }
        if (const auto it = doc.find("removed"); it != doc.end()) {
            if (!it->is_array()) throw bad("\"removed\" must be an array of ids");
            for (const nlohmann::json& id : *it) o.removed_.insert(id_of(id, "\"removed\""));
        }
        return o;
    }

private:
    const nlohmann::json* find_added(std::string_view id) const {
        for (const auto& [key, entry] : added_)
            if (key == id) return &entry;
        return nullptr;
    }
    void set_added(const std::string& id, nlohmann::json entry) {
        for (auto& [key, e] : added_)
            if (key == id) {
                e = std::move(entry);
                return;
            }
        added_.emplace_back(id, std::move(entry));
    }

    std::vector<std::pair<std::string, nlohmann::json>> added_;  // in the order added
    std::map<std::string, nlohmann::json> changed_;              // id -> the fields set
    std::set<std::string> removed_;
};

}  // namespace hlsrelay
