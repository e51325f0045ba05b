#!/usr/bin/python3
"""A minimal StatusNotifierWatcher: the session-bus service a desktop's tray host provides.

The tray app (libayatana-appindicator) registers its StatusNotifierItem here, as it would with
a real desktop, and this prints the item's `BUS-NAME/OBJECT-PATH` on stdout, one per line.
scripts/tray-e2e then reads and clicks the item's menu over com.canonical.dbusmenu
(tests/tray/dbusmenu.py). Debian's python3-gi; run with /usr/bin/python3.
"""
from gi.repository import Gio, GLib

INTERFACE = "org.kde.StatusNotifierWatcher"
PATH = "/StatusNotifierWatcher"
XML = f"""<node><interface name="{INTERFACE}">
  <method name="RegisterStatusNotifierItem"><arg type="s" direction="in"/></method>
  <method name="RegisterStatusNotifierHost"><arg type="s" direction="in"/></method>
  <property name="RegisteredStatusNotifierItems" type="as" access="read"/>
  <property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
  <property name="ProtocolVersion" type="i" access="read"/>
  <signal name="StatusNotifierItemRegistered"><arg type="s"/></signal>
  <signal name="StatusNotifierItemUnregistered"><arg type="s"/></signal>
  <signal name="StatusNotifierHostRegistered"/>
</interface></node>"""

items = []


def on_call(connection, sender, _path, _interface, method, parameters, invocation):
    if method == "RegisterStatusNotifierItem":
        (service,) = parameters.unpack()
        # Items pass either their object path (the caller is the bus name) or a bus name.
        item = f"{sender}{service}" if service.startswith("/") else f"{service}/StatusNotifierItem"
        items.append(item)
        print(item, flush=True)
        connection.emit_signal(None, PATH, INTERFACE, "StatusNotifierItemRegistered",
                               GLib.Variant("(s)", (item,)))
    invocation.return_value(None)


def on_get(_connection, _sender, _path, _interface, name):
    return {
        "RegisteredStatusNotifierItems": GLib.Variant("as", items),
        "IsStatusNotifierHostRegistered": GLib.Variant("b", True),
        "ProtocolVersion": GLib.Variant("i", 0),
    }[name]


def on_bus(connection, _name):
    info = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
    connection.register_object(PATH, info, on_call, on_get, None)


Gio.bus_own_name(Gio.BusType.SESSION, INTERFACE, Gio.BusNameOwnerFlags.NONE, on_bus, None,
                 lambda *_: exit("cannot own " + INTERFACE))
GLib.MainLoop().run()
