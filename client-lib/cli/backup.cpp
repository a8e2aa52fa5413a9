// `sluice backup PATH`: an online, compacted copy of the broker's whole store, written to a
// local file (the broker streams it over the connection).

#include <iostream>

#include "commands.h"
#include "format.h"
#include "json.h"

namespace sluice::cli {

void addBackupCommand(CLI::App& app, Context& context) {
  CLI::App* cmd = app.add_subcommand(
      "backup", "Write an online, consistent, compacted copy of the broker's store to PATH");
  auto path = std::make_shared<std::string>();
  cmd->add_option("PATH", *path, "File to write (atomically: temp file, fsync, rename)")
      ->required();
  cmd->footer(
      "The broker keeps serving during the copy. The file is an LMDB data file: to restore,\n"
      "put it at DIR/data.mdb and start `sluiced --data DIR`.\n"
      "Example:\n  sluice backup /backups/sluice-$(date +%F).mdb");
  cmd->callback([&context, path] {
    context.action = [&context, path] {
      uint64_t bytes = context.take(context.admin().backup(*path));
      if (context.options.json) {
        Json document;
        document["path"] = *path;
        document["bytes"] = bytes;
        context.print(dumpDocument(document));
      } else {
        context.print("backup written: " + *path + " (" + formatBytes(bytes) + ", " +
                      std::to_string(bytes) + " bytes)");
      }
      return kExitOk;
    };
  });
}

}  // namespace sluice::cli
