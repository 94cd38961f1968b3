#!/usr/bin/python3
"""A WebKitGTK browser for WebDriver that keeps its data in a folder.

WebKitWebDriver starts MiniBrowser with an ephemeral data manager, so nothing
survives a new session and a "browser restart" cannot be tested with it.
This browser is started by WebKitWebDriver in its place (capability
`webkitgtk:browserOptions.binary`) with `--data-dir=DIR`: service worker
registrations, IndexedDB and caches live in DIR, and a later session with
the same DIR finds them again.
"""
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2  # noqa: E402


def main(arguments):
    data_dir = None
    for argument in arguments:
        if argument.startswith("--data-dir="):
            data_dir = argument.split("=", 1)[1]
    if not data_dir:
        print("webkit-browser.py: --data-dir=DIR is required", file=sys.stderr)
        return 2
    manager = WebKit2.WebsiteDataManager(
        base_data_directory=data_dir, base_cache_directory=data_dir + "/cache"
    )
    context = WebKit2.WebContext(website_data_manager=manager)
    context.set_automation_allowed(True)
    windows = []

    def create_web_view(_session):
        view = WebKit2.WebView(web_context=context, is_controlled_by_automation=True)
        window = Gtk.Window()
        window.set_default_size(1024, 768)
        window.add(view)
        window.show_all()
        windows.append(window)

        def closed(_view):
            window.destroy()
            windows.remove(window)

        view.connect("close", closed)
        return view

    def automation_started(_context, session):
        info = WebKit2.ApplicationInfo()
        info.set_name("MiniBrowser")
        info.set_version(WebKit2.get_major_version(), WebKit2.get_minor_version(), WebKit2.get_micro_version())
        session.set_application_info(info)
        session.connect("create-web-view", create_web_view)

    context.connect("automation-started", automation_started)
    Gtk.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
