// Reference: PyTorch's torch.save zip format (torch/serialization.py, "the new zipfile-based serialization", PyTorch >= 1.6):
// an archive whose "<name>/data.pkl" is a pickle in which each tensor is torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks) and each storage the persistent id ("storage",
// torch.<Type>Storage, key, location, numel) of the raw little-endian bytes in "<name>/data/<key>".
// Checkpoints of torchvision's detection reference script (references/detection/train.py: {"model": state_dict,
// "optimizer", "lr_scheduler", "args", "epoch"}) and of DistributedDataParallel ("module." keys) are read as documented there.
using System.IO.Compression;
using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.IO;

/// <summary>
/// Reads PyTorch state dicts written by <c>torch.save</c> without running any pickled code: tensors are rebuilt from their
/// storage with the saved offset, size and stride, so channels-last weights, tensors that share one storage (views,
/// flattened parameters) and scalars all load; every other pickled object is kept as inert data.
/// </summary>
public static class TorchSaveReader
{
    /// <summary>The tensors of a state dict read from a file, and where in the file they were found.</summary>
    /// <param name="Tensors">Key to a fresh contiguous CPU tensor (the caller disposes them).</param>
    /// <param name="Source">Which object of the file holds them ("the state dict", "checkpoint['model']") and what was changed
    /// ("... without DistributedDataParallel's 'module.' prefix").</param>
    public sealed record StateDict(Dictionary<string, Tensor> Tensors, string Source);

    private static readonly string[] NestedKeys = ["model", "state_dict", "model_state_dict", "module", "ema"];

    /// <summary>
    /// Reads the state dict saved in <paramref name="path"/> by <c>torch.save(model.state_dict(), path)</c>, or by
    /// <c>torch.save({"model": model.state_dict(), ...}, path)</c> as torchvision's reference training scripts save
    /// checkpoints (also under "state_dict" or "model_state_dict"). When every key starts with <c>module.</c> (the state
    /// dict of a DistributedDataParallel wrapper) the prefix is removed. Tensors keep their dtype; nn.Parameter entries
    /// read as plain tensors.
    /// </summary>
    /// <param name="path">The .pth / .pt file.</param>
    /// <returns>The tensors (caller disposes) and where they were found.</returns>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DataFormatException">Not a zip-format torch.save file (the legacy pre-1.6 format, TorchScript and whole
    /// pickled modules are named as such), a truncated or malformed archive, a storage type without a TorchSharp dtype, a
    /// tensor whose size and stride reach outside its storage (the key is named), or no tensors.</exception>
    public static StateDict ReadStateDict(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist", path);
        using var fs = File.OpenRead(path);
        var head = new byte[4];
        int n = fs.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        if (n >= 2 && head[0] == 0x80 && head[1] <= 5)
            throw new DataFormatException(path, null, null,
                "is in torch.save's legacy format (PyTorch < 1.6, or _use_new_zipfile_serialization=False); re-save it with a newer PyTorch: torch.save(torch.load(old), new)");
        if (n < 4 || head[0] != 0x50 || head[1] != 0x4b || head[2] != 0x03 || head[3] != 0x04)
            throw new DataFormatException(path, null, null, "not a PyTorch .pth file (torch.save writes a zip archive, starting with PK)");
        fs.Seek(0, SeekOrigin.Begin);
        var created = new List<Tensor>();
        try
        {
            using var zip = new ZipArchive(fs, ZipArchiveMode.Read);
            var pkl = zip.Entries.Where(e => e.FullName == "data.pkl" || e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
                .OrderBy(e => e.FullName.Length).FirstOrDefault()
                ?? throw new DataFormatException(path, null, "data.pkl", "missing: a zip file but not one written by torch.save");
            string prefix = pkl.FullName[..^"data.pkl".Length];
            if (zip.GetEntry(prefix + "constants.pkl") != null || zip.Entries.Any(e => e.FullName.StartsWith(prefix + "code/", StringComparison.Ordinal)))
                throw new DataFormatException(path, null, null,
                    "is a TorchScript module (torch.jit.save), not a state dict; in Python save torch.save(model.state_dict(), path) instead");
            if (zip.GetEntry(prefix + "byteorder") is { } bo)
            {
                using var sr = new StreamReader(bo.Open());
                string order = sr.ReadToEnd().Trim();
                if (order != "little") throw new DataFormatException(path, null, "byteorder", $"the tensors are stored {order}-endian; only little-endian files are supported");
            }
            var reader = new TorchPickle(path, zip, prefix, created);
            object? root;
            using (var s = pkl.Open())
            {
                var pickle = new MemoryStream(); // seekable, so that errors can name the byte
                s.CopyTo(pickle);
                pickle.Position = 0;
                root = reader.Load(pickle);
            }
            var result = Extract(path, root);
            var keep = new HashSet<Tensor>(result.Tensors.Values, ReferenceEqualityComparer.Instance);
            foreach (var t in created) if (!keep.Contains(t)) t.Dispose();
            created.Clear();
            return result;
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, null, null, $"truncated or malformed torch.save file: {e.Message}", e);
        }
        finally
        {
            foreach (var t in created) t.Dispose();
        }
    }

    private static StateDict Extract(string path, object? root)
    {
        static Dictionary<string, Tensor> Tensors(PickleDict d) =>
            d.Where(kv => kv.Key is string && kv.Value is Tensor).ToDictionary(kv => (string)kv.Key, kv => (Tensor)kv.Value!);
        static string Describe(object? o) => o switch
        {
            null => "None",
            PickleObject p => $"a pickled {p.Type} object",
            Tensor => "a single tensor",
            PickleDict => "a dict",
            _ => $"a {o.GetType().Name}",
        };
        Dictionary<string, Tensor>? sd = null;
        string source = "the state dict";
        if (root is PickleDict d)
        {
            sd = Tensors(d);
            if (sd.Count == 0)
            {
                sd = null;
                foreach (var key in NestedKeys)
                    if (d.TryGetValue(key, out var inner) && inner is PickleDict nd && Tensors(nd) is { Count: > 0 } t)
                    {
                        sd = t;
                        source = $"checkpoint['{key}']";
                        break;
                    }
            }
            if (sd is null)
            {
                var keys = string.Join(", ", d.Keys.Take(8).Select(k => k is string s ? $"'{s}'" : k.ToString()));
                throw new DataFormatException(path, null, null,
                    $"holds no tensors: a dict with keys {keys}{(d.Count > 8 ? ", ..." : "")} (expected a state dict, or a checkpoint with one under {string.Join(", ", NestedKeys.Select(k => $"'{k}'"))})");
            }
        }
        else if (root is PickleObject o && o.State is PickleDict state && state.ContainsKey("_modules"))
            throw new DataFormatException(path, null, null,
                $"holds a whole pickled module ({o.Type}), not a state dict; in Python save torch.save(model.state_dict(), path) instead");
        else
            throw new DataFormatException(path, null, null, $"holds {Describe(root)}, not a state dict (a dict of tensors)");
        const string ddp = "module.";
        if (sd.Keys.All(k => k.StartsWith(ddp, StringComparison.Ordinal)))
        {
            sd = sd.ToDictionary(kv => kv.Key[ddp.Length..], kv => kv.Value);
            source += " without DistributedDataParallel's 'module.' prefix";
        }
        return new StateDict(sd, source);
    }

    private static ScalarType StorageType(string path, string name) => name switch
    {
        "FloatStorage" => ScalarType.Float32,
        "DoubleStorage" => ScalarType.Float64,
        "HalfStorage" => ScalarType.Float16,
        "BFloat16Storage" => ScalarType.BFloat16,
        "LongStorage" => ScalarType.Int64,
        "IntStorage" => ScalarType.Int32,
        "ShortStorage" => ScalarType.Int16,
        "CharStorage" => ScalarType.Int8,
        "ByteStorage" or "UntypedStorage" => ScalarType.Byte,
        "BoolStorage" => ScalarType.Bool,
        "ComplexFloatStorage" => ScalarType.ComplexFloat32,
        "ComplexDoubleStorage" => ScalarType.ComplexFloat64,
        _ => throw new DataFormatException(path, null, null, $"storage type torch.{name} is not supported (quantized or unknown dtype)"),
    };

    /// <summary>A storage named by a persistent id; its bytes are read on first use.</summary>
    private sealed class Storage(string key, ScalarType dtype, long numel)
    {
        public string Key { get; } = key;
        public ScalarType Dtype { get; } = dtype;
        public long Numel { get; } = numel;
        public Tensor? Data { get; set; }
    }

    private sealed class TorchPickle(string path, ZipArchive zip, string prefix, List<Tensor> created) : PickleReader
    {
        private readonly Dictionary<string, Storage> _storages = [];

        protected override object? PersistentLoad(object? pid)
        {
            if (pid is not object?[] { Length: >= 5 } t || t[0] is not "storage" || t[1] is not PickleGlobal type || t[2] is not string key)
                throw new InvalidDataException($"unknown persistent id {pid}");
            long numel = ToLong(t[4], "storage size");
            if (_storages.TryGetValue(key, out var known)) return known;
            var s = new Storage(key, StorageType(path, type.Name), numel);
            _storages[key] = s;
            return s;
        }

        private Tensor Load(Storage s)
        {
            if (s.Data is { } d) return d;
            var entry = zip.GetEntry(prefix + "data/" + s.Key) ?? throw new InvalidDataException($"storage {s.Key} is missing from the archive");
            long elementSize = s.Dtype switch
            {
                ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
                ScalarType.ComplexFloat64 => 16,
                ScalarType.Float32 or ScalarType.Int32 => 4,
                ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
                _ => 1,
            };
            if (s.Numel < 0 || s.Numel * elementSize > int.MaxValue)
                throw new DataFormatException(path, null, null, $"storage {s.Key} holds {s.Numel} elements of {elementSize} bytes; storages over 2 GB are not supported");
            var data = empty([s.Numel], s.Dtype);
            created.Add(data);
            s.Data = data;
            long bytes = s.Numel * data.ElementSize;
            if (entry.Length < bytes) throw new InvalidDataException($"storage {s.Key} holds {entry.Length} bytes, expected {bytes} ({s.Numel} x {data.ElementSize})");
            if (bytes > 0)
            {
                using var src = entry.Open();
                src.ReadExactly(data.bytes);
            }
            return data;
        }

        protected override object? Reduce(PickleGlobal callable, object?[] args)
        {
            switch (callable.Module, callable.Name)
            {
                case ("torch._utils", "_rebuild_tensor_v2" or "_rebuild_tensor"):
                {
                    if (args.Length < 4 || args[0] is not Storage s) throw new InvalidDataException($"{callable} without a storage");
                    long offset = ToLong(args[1], "storage offset");
                    long[] size = Longs(args[2], "size"), stride = Longs(args[3], "stride");
                    if (size.Length != stride.Length) throw new InvalidDataException($"storage {s.Key}: size [{string.Join(", ", size)}] and stride [{string.Join(", ", stride)}] differ in length");
                    long last = offset;
                    bool empty0 = size.Any(v => v == 0);
                    for (int i = 0; i < size.Length; i++)
                    {
                        if (size[i] < 0 || stride[i] < 0) throw new InvalidDataException($"storage {s.Key}: negative size or stride");
                        if (size[i] > 0) last += (size[i] - 1) * stride[i];
                    }
                    if (!empty0 && (offset < 0 || last >= s.Numel))
                        throw new InvalidDataException($"a tensor of size [{string.Join(", ", size)}], stride [{string.Join(", ", stride)}] at offset {offset} reaches element {last} of storage {s.Key}, which has {s.Numel}");
                    var storage = Load(s);
                    Tensor result;
                    long count = size.Aggregate(1L, (a, b) => a * b);
                    if (offset == 0 && count == s.Numel && IsRowMajor(size, stride))
                        result = storage.view(size); // the usual case: the whole storage, in order (no copy)
                    else
                    {
                        // Another layout (channels-last, a view into a shared or larger storage): a contiguous copy.
                        result = empty(size, s.Dtype);
                        if (!empty0)
                            using (var view = storage.as_strided(size, stride, offset))
                                result.copy_(view);
                    }
                    created.Add(result);
                    return result;
                }
                case ("torch._utils", "_rebuild_parameter" or "_rebuild_parameter_with_state") when args.Length > 0 && args[0] is Tensor data:
                    return data;
                case ("torch._tensor", "_rebuild_from_type_v2") when args is [PickleGlobal inner, _, object?[] innerArgs, ..]:
                    return Reduce(inner, innerArgs); // a tensor subclass or a tensor with Python attributes: its data

                default:
                    return base.Reduce(callable, args);
            }
        }

        private static bool IsRowMajor(long[] size, long[] stride)
        {
            long expected = 1;
            for (int i = size.Length - 1; i >= 0; i--)
            {
                if (size[i] != 1 && stride[i] != expected) return false;
                expected *= size[i];
            }
            return true;
        }

        private static long ToLong(object? v, string what) => v switch
        {
            long l => l,
            BigInteger b => (long)b,
            _ => throw new InvalidDataException($"{what} is {v?.GetType().Name ?? "None"}, not an integer"),
        };

        private static long[] Longs(object? v, string what) => v switch
        {
            object?[] a => [.. a.Select(x => ToLong(x, what))],
            PickleObject { Type.Name: "Size", Args: [object?[] a] } => [.. a.Select(x => ToLong(x, what))],
            _ => throw new InvalidDataException($"{what} is {v?.GetType().Name ?? "None"}, not a tuple"),
        };
    }
}
