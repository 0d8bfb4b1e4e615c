// Reference: Python's pickle protocols 0-4 as documented in Lib/pickletools.py (opcode names, arguments, stack effects).
// Nothing is executed: classes become PickleGlobal names and calls become PickleObject records that the caller interprets.
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace RetinaSharp.IO;

/// <summary>A <c>module.name</c> reference (pickle's GLOBAL / STACK_GLOBAL); never resolved to code.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>
/// The result of a call that the reader does not interpret (REDUCE, NEWOBJ): the callable, its arguments, the BUILD state
/// and any items appended or set on it.
/// </summary>
internal sealed class PickleObject(PickleGlobal type, object?[] args)
{
    public PickleGlobal Type { get; } = type;
    public object?[] Args { get; } = args;
    public object? State { get; set; }
    public PickleDict Items { get; } = new();
    public List<object?> ListItems { get; } = [];
}

/// <summary>A Python dict in insertion order (keys: string, long, double, bool, tuples by reference; None as <see cref="NoneKey"/>).</summary>
internal sealed class PickleDict : Dictionary<object, object?>
{
    /// <summary>Stands for a None key.</summary>
    public static readonly object NoneKey = new();

    public void Set(object? key, object? value) => this[key ?? NoneKey] = value;
}

/// <summary>
/// Reads one pickle (protocols 0 to 4) into plain objects: None → null, bool, long (or <see cref="BigInteger"/>),
/// double, string, byte[], tuple → object?[], list → List&lt;object?&gt;, dict → <see cref="PickleDict"/>, set →
/// HashSet&lt;object&gt;. A call is handed to <see cref="Reduce"/>, a persistent id to <see cref="PersistentLoad"/>.
/// </summary>
internal abstract class PickleReader
{
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];

    /// <summary>Interprets <c>callable(*args)</c>; the default keeps it as a <see cref="PickleObject"/>.</summary>
    protected virtual object? Reduce(PickleGlobal callable, object?[] args) => new PickleObject(callable, args);

    /// <summary>Resolves a persistent id (torch.save's storages).</summary>
    protected abstract object? PersistentLoad(object? pid);

    /// <summary>Reads the pickle from <paramref name="input"/> up to its STOP opcode.</summary>
    /// <exception cref="InvalidDataException">A malformed or unsupported pickle; the message names the opcode and its offset.</exception>
    public object? Load(Stream input)
    {
        var r = new BinaryReader(input, Encoding.UTF8, leaveOpen: true);
        long offset = 0;
        try
        {
            while (true)
            {
                offset = input.CanSeek ? input.Position : offset;
                byte op = r.ReadByte();
                if (op == (byte)'.') return Pop();
                Step(op, r);
            }
        }
        catch (EndOfStreamException e) { throw new InvalidDataException("the pickle ends before its STOP opcode", e); }
        catch (Exception e) when (e is InvalidCastException or ArgumentOutOfRangeException or KeyNotFoundException or OverflowException or FormatException or InvalidOperationException)
        { throw new InvalidDataException($"malformed pickle near byte {offset}: {e.Message}", e); }
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks.Peek())) throw new InvalidDataException("pickle stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Top => _stack.Count > 0 ? _stack[^1] : throw new InvalidDataException("pickle stack underflow");

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw new InvalidDataException("pickle MARK missing");
        int m = _marks.Pop();
        var items = _stack.GetRange(m, _stack.Count - m);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private static string Line(BinaryReader r)
    {
        var sb = new StringBuilder();
        for (byte b; (b = r.ReadByte()) != (byte)'\n';) sb.Append((char)b);
        return sb.ToString();
    }

    private static object Integer(BigInteger v) => v >= long.MinValue && v <= long.MaxValue ? (long)v : v;

    private void Step(byte op, BinaryReader r)
    {
        switch (op)
        {
            case 0x80: r.ReadByte(); break;                                   // PROTO
            case 0x95: r.ReadInt64(); break;                                  // FRAME
            case (byte)'(': _marks.Push(_stack.Count); break;                 // MARK
            case (byte)'0': Pop(); break;                                     // POP
            case (byte)'1': PopMark(); break;                                 // POP_MARK
            case (byte)'2': _stack.Add(Top); break;                           // DUP
            case (byte)'N': _stack.Add(null); break;                          // NONE
            case 0x88: _stack.Add(true); break;                               // NEWTRUE
            case 0x89: _stack.Add(false); break;                              // NEWFALSE
            case (byte)'J': _stack.Add((long)r.ReadInt32()); break;           // BININT
            case (byte)'K': _stack.Add((long)r.ReadByte()); break;            // BININT1
            case (byte)'M': _stack.Add((long)r.ReadUInt16()); break;          // BININT2
            case 0x8a: _stack.Add(Integer(new BigInteger(r.ReadBytes(r.ReadByte()), isUnsigned: false, isBigEndian: false))); break; // LONG1
            case 0x8b: _stack.Add(Integer(new BigInteger(r.ReadBytes(r.ReadInt32()), isUnsigned: false, isBigEndian: false))); break; // LONG4
            case (byte)'I':                                                   // INT (text; 00 / 01 are False / True)
            {
                string s = Line(r);
                _stack.Add(s == "00" ? false : s == "01" ? true : Integer(BigInteger.Parse(s, CultureInfo.InvariantCulture)));
                break;
            }
            case (byte)'L': _stack.Add(Integer(BigInteger.Parse(Line(r).TrimEnd('L'), CultureInfo.InvariantCulture))); break; // LONG
            case (byte)'F': _stack.Add(double.Parse(Line(r), CultureInfo.InvariantCulture)); break;                            // FLOAT
            case (byte)'G': _stack.Add(BinaryPrimitives.ReadDoubleBigEndian(r.ReadBytes(8))); break;                           // BINFLOAT
            case (byte)'X': _stack.Add(Encoding.UTF8.GetString(Exactly(r, r.ReadUInt32()))); break;                            // BINUNICODE
            case 0x8c: _stack.Add(Encoding.UTF8.GetString(r.ReadBytes(r.ReadByte()))); break;                                 // SHORT_BINUNICODE
            case 0x8d: _stack.Add(Encoding.UTF8.GetString(Exactly(r, r.ReadUInt64()))); break;                                 // BINUNICODE8
            case (byte)'V': _stack.Add(System.Text.RegularExpressions.Regex.Unescape(Line(r))); break;                        // UNICODE (raw-unicode-escape)
            case (byte)'T': _stack.Add(Encoding.Latin1.GetString(Exactly(r, r.ReadUInt32()))); break;                          // BINSTRING
            case (byte)'U': _stack.Add(Encoding.Latin1.GetString(r.ReadBytes(r.ReadByte()))); break;                           // SHORT_BINSTRING
            case (byte)'S': _stack.Add(Line(r).Trim('\'', '"')); break;                                                        // STRING
            case (byte)'B': _stack.Add(Exactly(r, r.ReadUInt32())); break;                                                     // BINBYTES
            case (byte)'C': _stack.Add(r.ReadBytes(r.ReadByte())); break;                                                      // SHORT_BINBYTES
            case 0x8e: _stack.Add(Exactly(r, r.ReadUInt64())); break;                                                          // BINBYTES8
            case (byte)')': _stack.Add(Array.Empty<object?>()); break;                                                         // EMPTY_TUPLE
            case 0x85: _stack.Add(new[] { Pop() }); break;                                                                     // TUPLE1
            case 0x86: { var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b }); break; }                                   // TUPLE2
            case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b, c }); break; }                 // TUPLE3
            case (byte)'t': _stack.Add(PopMark().ToArray()); break;                                                            // TUPLE
            case (byte)']': _stack.Add(new List<object?>()); break;                                                            // EMPTY_LIST
            case (byte)'l': _stack.Add(PopMark()); break;                                                                      // LIST
            case (byte)'a': { var v = Pop(); Append(Top, [v]); break; }                                                       // APPEND
            case (byte)'e': { var items = PopMark(); Append(Top, items); break; }                                              // APPENDS
            case (byte)'}': _stack.Add(new PickleDict()); break;                                                               // EMPTY_DICT
            case (byte)'d': { var items = PopMark(); var d = new PickleDict(); SetItems(d, items); _stack.Add(d); break; }    // DICT
            case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(Top, [k, v]); break; }                                  // SETITEM
            case (byte)'u': { var items = PopMark(); SetItems(Top, items); break; }                                           // SETITEMS
            case 0x8f: _stack.Add(new HashSet<object>()); break;                                                               // EMPTY_SET
            case 0x90: { var items = PopMark(); Append(Top, items); break; }                                                  // ADDITEMS
            case 0x91: _stack.Add(new HashSet<object>(PopMark().Select(v => v ?? PickleDict.NoneKey))); break;                 // FROZENSET
            case (byte)'c': _stack.Add(new PickleGlobal(Line(r), Line(r))); break;                                             // GLOBAL
            case 0x93: { var name = (string)Pop()!; var module = (string)Pop()!; _stack.Add(new PickleGlobal(module, name)); break; } // STACK_GLOBAL
            case (byte)'R': { var args = Pop(); var f = Pop(); _stack.Add(Call(f, args)); break; }                            // REDUCE
            case 0x81: { var args = Pop(); var cls = Pop(); _stack.Add(Call(cls, args)); break; }                             // NEWOBJ
            case 0x92: { Pop(); var args = Pop(); var cls = Pop(); _stack.Add(Call(cls, args)); break; }                      // NEWOBJ_EX (kwargs dropped)
            case (byte)'b': { var state = Pop(); if (Top is PickleObject o) o.State = state; break; }                         // BUILD (dict / tensor state ignored)
            case (byte)'Q': _stack.Add(PersistentLoad(Pop())); break;                                                          // BINPERSID
            case (byte)'P': _stack.Add(PersistentLoad(Line(r))); break;                                                        // PERSID
            case (byte)'q': _memo[r.ReadByte()] = Top; break;                                                                  // BINPUT
            case (byte)'r': _memo[r.ReadUInt32()] = Top; break;                                                                // LONG_BINPUT
            case (byte)'p': _memo[long.Parse(Line(r), CultureInfo.InvariantCulture)] = Top; break;                             // PUT
            case 0x94: _memo[_memo.Count] = Top; break;                                                                        // MEMOIZE
            case (byte)'h': _stack.Add(_memo[r.ReadByte()]); break;                                                            // BINGET
            case (byte)'j': _stack.Add(_memo[r.ReadUInt32()]); break;                                                          // LONG_BINGET
            case (byte)'g': _stack.Add(_memo[long.Parse(Line(r), CultureInfo.InvariantCulture)]); break;                       // GET
            default:
                throw new InvalidDataException($"unsupported pickle opcode 0x{op:x2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') at byte {(r.BaseStream.CanSeek ? r.BaseStream.Position - 1 : -1)}");
        }
    }

    private static byte[] Exactly(BinaryReader r, ulong n)
    {
        if (n > int.MaxValue) throw new InvalidDataException($"a pickled string or bytes of {n} bytes is too long");
        var b = r.ReadBytes((int)n);
        return b.Length == (int)n ? b : throw new EndOfStreamException();
    }

    private object? Call(object? callable, object? args)
    {
        if (callable is not PickleGlobal g) throw new InvalidDataException($"a pickle calls {callable?.GetType().Name ?? "None"}, not a class or function");
        var a = args as object?[] ?? throw new InvalidDataException($"the arguments of {g} are not a tuple");
        switch (g.Module, g.Name)
        {
            case ("collections", "OrderedDict") or ("builtins", "dict") or ("__builtin__", "dict") or ("collections", "Counter") or ("collections", "defaultdict"):
            {
                var d = new PickleDict();
                if (g.Name != "defaultdict" && a.Length > 0 && a[0] is PickleDict src) foreach (var kv in src) d[kv.Key] = kv.Value;
                else if (g.Name != "defaultdict" && a.Length > 0 && a[0] is List<object?> pairs)
                    foreach (var p in pairs) if (p is object?[] { Length: 2 } kv) d.Set(kv[0], kv[1]);
                return d;
            }
            case ("builtins" or "__builtin__", "set" or "frozenset"):
                return new HashSet<object>(a.Length > 0 && a[0] is List<object?> l ? l.Select(v => v ?? PickleDict.NoneKey) : []);
            case ("builtins" or "__builtin__", "list"):
                return a.Length > 0 && a[0] is List<object?> l2 ? new List<object?>(l2) : new List<object?>();
            case ("_codecs", "encode") when a.Length > 0 && a[0] is string s:
                return Encoding.Latin1.GetBytes(s);
            case ("builtins" or "__builtin__", "bytearray" or "bytes") when a.Length > 0 && a[0] is string s2:
                return Encoding.Latin1.GetBytes(s2);
            default:
                return Reduce(g, a);
        }
    }

    private static void Append(object? target, List<object?> items)
    {
        switch (target)
        {
            case List<object?> l: l.AddRange(items); break;
            case HashSet<object> s: foreach (var v in items) s.Add(v ?? PickleDict.NoneKey); break;
            case PickleObject o: o.ListItems.AddRange(items); break;
            default: throw new InvalidDataException($"a pickle appends to a {target?.GetType().Name ?? "None"}");
        }
    }

    private static void SetItems(object? target, List<object?> items)
    {
        if (items.Count % 2 != 0) throw new InvalidDataException("a pickled dict has an odd number of keys and values");
        var d = target switch
        {
            PickleDict pd => pd,
            PickleObject o => o.Items,
            _ => throw new InvalidDataException($"a pickle sets items on a {target?.GetType().Name ?? "None"}"),
        };
        for (int i = 0; i < items.Count; i += 2) d.Set(items[i], items[i + 1]);
    }
}
