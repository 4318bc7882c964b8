// `enoki kv ...`, `enoki keygroup ...` and `enoki node status`: one request to one node, its
// answer on stdout, an error as one line on stderr with exit code 1.
#include <iostream>

#include <spdlog/fmt/fmt.h>

#include "cli/client_options.h"

namespace enoki::cli {
namespace {

std::string VersionText(const proto::Version& v) {
  return std::to_string(v.wall_us()) + "." + std::to_string(v.logical()) + "@" + v.node();
}

void PrintKeygroup(const proto::KeygroupMeta& m) {
  std::cout << "name: " << m.name() << "\n"
            << "mutability: " << (m.mutability() == proto::APPEND_ONLY ? "append-only" : "mutable")
            << "\n"
            << "replication: " << (m.mode() == proto::SYNC ? "sync" : "async") << "\n"
            << "replicas:";
  for (const auto& r : m.replicas()) std::cout << " " << r.node() << (r.ready() ? "" : "(pulling)");
  std::cout << "\ncreated: " << VersionText(m.created()) << "\n"
            << "version: " << VersionText(m.version()) << "\n";
  if (!m.owner().empty()) std::cout << "owner: " << m.owner() << "\n";
}

}  // namespace

void AddKvCommand(CLI::App& app, Runner& run) {
  CLI::App* kv = app.add_subcommand("kv", "Read and write items of a keygroup at any node");
  kv->require_subcommand(1);
  auto target = std::make_shared<Target>();
  auto kg = std::make_shared<std::string>();
  auto key = std::make_shared<std::string>();

  CLI::App* get = kv->add_subcommand("get", "Print the value of KEY (exit 1 if absent)");
  get->add_option("keygroup", *kg, "Keygroup")->required();
  get->add_option("key", *key, "Key")->required();
  AddTargetOptions(get, *target);
  get->callback([&run, target, kg, key] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        auto r = c.Get(*kg, *key);
        if (r.ok()) std::cout << r->value() << "\n";
        return r.status();
      });
    };
  });

  CLI::App* put = kv->add_subcommand("put", "Write VALUE (or --file) under KEY");
  put->add_option("keygroup", *kg, "Keygroup")->required();
  put->add_option("key", *key, "Key")->required();
  auto input = std::make_shared<ValueInput>();
  input->AddTo(put);
  AddTargetOptions(put, *target);
  put->callback([&run, target, kg, key, input] {
    run = [=] {
      auto v = input->Read();
      if (!v.ok()) return ReportError("kv put: " + v.status().message());
      return WithClient(*target,
                        [&](adapters::Client& c) { return c.Put(*kg, *key, *v).status(); });
    };
  });

  CLI::App* del = kv->add_subcommand("delete", "Delete KEY")->alias("del");
  del->add_option("keygroup", *kg, "Keygroup")->required();
  del->add_option("key", *key, "Key")->required();
  AddTargetOptions(del, *target);
  del->callback([&run, target, kg, key] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) { return c.Delete(*kg, *key); });
    };
  });

  CLI::App* append = kv->add_subcommand(
      "append", "Append VALUE (or --file) to an append-only keygroup; prints the key it got");
  append->add_option("keygroup", *kg, "Keygroup")->required();
  auto append_input = std::make_shared<ValueInput>();
  append_input->AddTo(append);
  AddTargetOptions(append, *target);
  append->callback([&run, target, kg, append_input] {
    run = [=] {
      auto v = append_input->Read();
      if (!v.ok()) return ReportError("kv append: " + v.status().message());
      return WithClient(*target, [&](adapters::Client& c) {
        auto r = c.Append(*kg, *v);
        if (r.ok()) std::cout << r->key() << "\n";
        return r.status();
      });
    };
  });

  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto count = std::make_shared<uint32_t>(0);
  CLI::App* scan = kv->add_subcommand(
      "scan", "Print the items with FROM <= key < TO as 'key<TAB>value' lines, in key order");
  scan->add_option("keygroup", *kg, "Keygroup")->required();
  scan->add_option("--from", *from, "First key (default: the smallest)");
  scan->add_option("--to", *to, "Stop before this key (default: no end)");
  scan->add_option("--count", *count, "At most this many items (0: the node's default, 1000)");
  AddTargetOptions(scan, *target);
  scan->callback([&run, target, kg, from, to, count] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        auto r = c.Scan(*kg, *from, *to, *count);
        if (!r.ok()) return r.status();
        for (const auto& kv : r->items()) std::cout << kv.key() << "\t" << kv.value() << "\n";
        if (r->more())
          std::cerr << "(more items follow; continue with --from after the last key)\n";
        return core::Status::Ok();
      });
    };
  });
}

void AddKeygroupCommand(CLI::App& app, Runner& run) {
  CLI::App* cmd = app.add_subcommand("keygroup", "Create, inspect and re-replicate keygroups");
  cmd->require_subcommand(1);
  auto target = std::make_shared<Target>();
  auto name = std::make_shared<std::string>();
  auto node = std::make_shared<std::string>();
  auto replicas = std::make_shared<std::vector<std::string>>();
  auto append_only = std::make_shared<bool>(false);
  auto sync = std::make_shared<bool>(false);

  CLI::App* create = cmd->add_subcommand("create", "Create a keygroup replicated on --replicas");
  create->add_option("name", *name, "Keygroup name")->required();
  create
      ->add_option("-r,--replicas", *replicas,
                   "Node ids holding a replica, comma-separated (default: the node asked)")
      ->delimiter(',');
  create->add_flag("--append-only", *append_only, "Items are written once and never changed");
  create->add_flag("--sync", *sync,
                   "Acknowledge writes only once every replica applied them (default: async)");
  AddTargetOptions(create, *target);
  create->callback([&run, target, name, replicas, append_only, sync] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        proto::CreateKeygroupRequest r;
        r.set_name(*name);
        r.set_mutability(*append_only ? proto::APPEND_ONLY : proto::MUTABLE);
        r.set_mode(*sync ? proto::SYNC : proto::ASYNC);
        for (const auto& n : *replicas) r.add_replicas(n);
        return c.CreateKeygroup(r);
      });
    };
  });

  CLI::App* del =
      cmd->add_subcommand("delete", "Delete a keygroup and all its items everywhere")->alias("del");
  del->add_option("name", *name, "Keygroup name")->required();
  AddTargetOptions(del, *target);
  del->callback([&run, target, name] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) { return c.DeleteKeygroup(*name); });
    };
  });

  CLI::App* info = cmd->add_subcommand("info", "Print a keygroup's settings and replicas");
  info->add_option("name", *name, "Keygroup name")->required();
  AddTargetOptions(info, *target);
  info->callback([&run, target, name] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        auto r = c.KeygroupInfo(*name);
        if (r.ok()) PrintKeygroup(*r);
        return r.status();
      });
    };
  });

  CLI::App* list = cmd->add_subcommand(
      "list",
      "Print every keygroup, one line each: name, replicas, mutability, replication, and "
      "whether the node asked holds it ('held': a replica with all the data; 'pulling': a "
      "replica still pulling it; '-': no replica, it forwards). Needs 'admin' or 'read:*' on a "
      "node with keys");
  AddTargetOptions(list, *target);
  list->callback([&run, target] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        auto r = c.ListKeygroups();
        if (!r.ok()) return r.status();
        std::cout << "NAME\tREPLICAS\tMUTABILITY\tREPLICATION\tHERE\n";
        for (const auto& k : r->keygroups()) {
          const proto::KeygroupMeta& m = k.meta();
          std::string replicas;
          for (const auto& rep : m.replicas()) {
            replicas +=
                (replicas.empty() ? "" : ",") + rep.node() + (rep.ready() ? "" : "(pulling)");
          }
          std::cout << m.name() << "\t" << replicas << "\t"
                    << (m.mutability() == proto::APPEND_ONLY ? "append-only" : "mutable") << "\t"
                    << (m.mode() == proto::SYNC ? "sync" : "async") << "\t"
                    << (k.held()      ? "held"
                        : k.replica() ? "pulling"
                                      : "-")
                    << "\n";
        }
        return core::Status::Ok();
      });
    };
  });

  for (bool add : {true, false}) {
    CLI::App* sub = cmd->add_subcommand(
        add ? "add-replica" : "remove-replica",
        add ? "Add a replica on NODE; it pulls the data before it serves reads"
            : "Remove NODE's replica; refused for the last one, and while no other replica holds "
              "all the data yet. NODE hands on what it still owes, then forwards");
    sub->add_option("name", *name, "Keygroup name")->required();
    sub->add_option("node_id", *node, "Node id")->required();
    AddTargetOptions(sub, *target);
    sub->callback([&run, target, name, node, add] {
      run = [=] {
        return WithClient(*target, [&](adapters::Client& c) {
          return add ? c.AddReplica(*name, *node) : c.RemoveReplica(*name, *node);
        });
      };
    });
  }
}

void AddNodeStatusCommand(CLI::App& node_cmd, Runner& run) {
  auto target = std::make_shared<Target>();
  CLI::App* status = node_cmd.add_subcommand(
      "status",
      "Ask a running node whom it sees: one line per peer (up or down, smoothed ping round-trip "
      "time, how long ago it was heard from, outbox entries owed to it, where it is reached: an "
      "endpoint, or the connection it opened, behind NAT), then the keygroups it "
      "holds, and whether its storage takes writes. A peer is up when heard from within 4 ping "
      "intervals and one retry interval "
      "(2.2 s by default). Needs 'admin' on a node with keys");
  AddTargetOptions(status, *target);
  status->callback([&run, target] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        auto r = c.NodeStatus();
        if (!r.ok()) return r.status();
        auto ms = [](double v) { return v < 0 ? std::string("-") : fmt::format("{:.3f}", v); };
        std::cout << "node " << r->node() << "\n"
                  << "PEER\tSTATE\tRTT_MS\tLAST_HEARD_MS\tOUTBOX\tENDPOINT\n";
        for (const auto& p : r->peers()) {
          std::cout << p.node() << "\t" << (p.up() ? "up" : "down") << "\t" << ms(p.rtt_ms())
                    << "\t" << ms(p.last_heard_ms()) << "\t" << p.outbox() << "\t"
                    << (p.endpoint().empty() ? "(its own connection)" : p.endpoint()) << "\n";
        }
        std::cout << "outbox: " << r->outbox() << "\nheld:";
        for (const auto& k : r->held()) std::cout << " " << k;
        std::cout << "\njoining:";
        for (const auto& k : r->joining()) std::cout << " " << k;
        std::cout << "\nstorage: "
                  << (r->storage_fault().empty() ? "takes writes" : r->storage_fault());
        // Commits take milliseconds: one that ran for a second is a stalled disk.
        if (r->commit_running_ms() >= 1000) {
          std::cout << "; its commit under way has run for " << ms(r->commit_running_ms())
                    << " ms (the disk stalls: writes wait, reads are served)";
        }
        std::cout << "\n";
        return core::Status::Ok();
      });
    };
  });
}

void AddNodeLeaveCommand(CLI::App& node_cmd, Runner& run) {
  auto target = std::make_shared<Target>();
  auto node = std::make_shared<std::string>();
  CLI::App* leave = node_cmd.add_subcommand(
      "leave",
      "Make a node leave the cluster for good: it is removed from the replica sets of its "
      "keygroups (refused while it holds the only replica of one), and the members stop "
      "sending to it. Without --id, the node at --node leaves (another member, which must be "
      "up, records it); with --id ID, that member (also one that is down). "
      "Needs 'admin' on a node with keys. A node that left starts again only with --join");
  leave->add_option("--id", *node, "The member that leaves (default: the node asked)");
  AddTargetOptions(leave, *target);
  leave->callback([&run, target, node] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        proto::Request request;
        request.mutable_leave()->set_node(*node);
        auto r = c.Call(request);
        if (!r.ok()) return r.status();
        std::cout << "node " << (node->empty() ? r->node() : *node) << " left the cluster ("
                  << "recorded by " << r->served_by() << ")\n";
        return core::Status::Ok();
      });
    };
  });
}

}  // namespace enoki::cli
