#!/usr/bin/python3
"""Reads or clicks a tray item's menu over com.canonical.dbusmenu, as a tray host does.

  dbusmenu.py ITEM labels           prints the menu's labels, one per line
  dbusmenu.py ITEM click PREFIX     clicks the first item whose label starts with PREFIX

ITEM is `BUS-NAME/OBJECT-PATH` as tests/tray/sni-watcher.py prints it.
"""
import sys
import time

from gi.repository import Gio, GLib


def call(bus, name, path, interface, method, args, reply):
    return bus.call_sync(name, path, interface, method, args, GLib.VariantType(reply),
                         Gio.DBusCallFlags.NONE, 5000, None).unpack()


def entries(layout):
    item_id, properties, children = layout
    label = properties.get("label")
    if label and properties.get("visible", True):
        yield item_id, label
    for child in children:
        yield from entries(child)


def main():
    item, command = sys.argv[1], sys.argv[2]
    name, path = item.split("/", 1)
    path = "/" + path
    bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    (menu,) = call(bus, name, path, "org.freedesktop.DBus.Properties", "Get",
                   GLib.Variant("(ss)", ("org.kde.StatusNotifierItem", "Menu")), "(v)")
    _, layout = call(bus, name, menu, "com.canonical.dbusmenu", "GetLayout",
                     GLib.Variant("(iias)", (0, -1, [])), "(u(ia{sv}av))")
    found = list(entries(layout))
    if command == "labels":
        for _, label in found:
            print(label)
        return
    prefix = sys.argv[3]
    for item_id, label in found:
        if label.startswith(prefix):
            call(bus, name, menu, "com.canonical.dbusmenu", "Event",
                 GLib.Variant("(isvu)", (item_id, "clicked", GLib.Variant("i", 0),
                                         int(time.time()))), "()")
            return
    sys.exit(f"no menu item starts with {prefix!r}; the menu: {[label for _, label in found]}")


main()
