"""A freedesktop notification daemon for the approval tests, on the session bus the tests run
in (scripts/with-keyring): it owns org.freedesktop.Notifications, writes each Notify call as a
JSON line to LOG, and for a notification whose summary or body contains MARKER and which offers ACTION,
emits ActionInvoked(id, ACTION) after a second, as a real daemon does when the user clicks
that button (https://specifications.freedesktop.org/notification-spec/latest/protocol.html).
Prints "ready" once it owns the name.

usage: notification-daemon.py LOG MARKER ACTION
"""

import json
import sys

from gi.repository import Gio, GLib

INTERFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
XML = """<node><interface name="org.freedesktop.Notifications">
<method name="Notify">
  <arg type="s" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/>
  <arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/>
  <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/><arg type="u" direction="out"/>
</method>
<method name="CloseNotification"><arg type="u" direction="in"/></method>
<method name="GetCapabilities"><arg type="as" direction="out"/></method>
<method name="GetServerInformation">
  <arg type="s" direction="out"/><arg type="s" direction="out"/>
  <arg type="s" direction="out"/><arg type="s" direction="out"/>
</method>
<signal name="NotificationClosed"><arg type="u"/><arg type="u"/></signal>
<signal name="ActionInvoked"><arg type="u"/><arg type="s"/></signal>
</interface></node>"""

log_path, marker, action = sys.argv[1], sys.argv[2], sys.argv[3]
state = {"next": 0}


def log(entry):
    with open(log_path, "a") as out:
        out.write(json.dumps(entry) + "\n")


def emit(connection, name, signature, values):
    connection.emit_signal(None, PATH, INTERFACE, name, GLib.Variant(signature, values))


def click(connection, notification):
    log({"invoked": notification, "action": action})
    emit(connection, "ActionInvoked", "(us)", (notification, action))
    # Dismissed by the user: the spec's reason 2.
    emit(connection, "NotificationClosed", "(uu)", (notification, 2))
    return False


def on_call(connection, sender, path, interface, method, params, invocation):
    if method == "Notify":
        app, replaces, icon, summary, body, actions, hints, timeout = params.unpack()
        state["next"] += 1
        notification = replaces or state["next"]
        log({"id": notification, "summary": summary, "body": body, "actions": actions,
             "timeout": timeout})
        invocation.return_value(GLib.Variant("(u)", (notification,)))
        keys = actions[0::2]
        if (marker in summary or marker in body) and action in keys:
            GLib.timeout_add(1000, click, connection, notification)
    elif method == "CloseNotification":
        (notification,) = params.unpack()
        log({"closed": notification})
        invocation.return_value(None)
        # Closed by a call to CloseNotification: reason 3.
        emit(connection, "NotificationClosed", "(uu)", (notification, 3))
    elif method == "GetCapabilities":
        invocation.return_value(GLib.Variant("(as)", (["actions", "body"],)))
    elif method == "GetServerInformation":
        invocation.return_value(GLib.Variant("(ssss)", ("stagepass-test", "stagepass", "1", "1.2")))


def on_bus(connection, name):
    node = Gio.DBusNodeInfo.new_for_xml(XML)
    connection.register_object(PATH, node.interfaces[0], on_call, None, None)


def on_name(connection, name):
    print("ready", flush=True)


def on_lost(connection, name):
    print("lost the name " + name, file=sys.stderr, flush=True)
    sys.exit(1)


Gio.bus_own_name(Gio.BusType.SESSION, INTERFACE, Gio.BusNameOwnerFlags.NONE, on_bus, on_name, on_lost)
GLib.MainLoop().run()
