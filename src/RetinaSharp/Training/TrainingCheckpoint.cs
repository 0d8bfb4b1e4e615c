// A training checkpoint: everything needed to continue a run exactly (model state_dict, the model's extra
// training state outside it, optimiser buffers, iteration, torch's generator state, the log so far, the
// configuration), in one file written atomically
// through AtomicFile (temporary file, flush, rename: the previous checkpoint stays until the new one is
// complete). Own little-endian container; tensors are stored as raw bytes so values round-trip bit-exactly.
using System.Text;
using RetinaSharp.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>The saved state of a run after <see cref="Iteration"/> completed iterations. Owns its tensors.</summary>
/// <param name="Iteration">Completed iterations (the next step is this 0-based iteration).</param>
/// <param name="OptimizerStepCount">Steps the optimiser actually took (skipped bad steps excluded).</param>
/// <param name="ConsecutiveBadSteps">Non-finite steps in a row at the time of saving.</param>
/// <param name="ConfigurationJson">The caller's configuration (model, data paths, ...), JSON.</param>
/// <param name="OptionsJson">The <see cref="TrainingOptions"/> of the run, JSON.</param>
/// <param name="LogJson">The rows of the training log so far, JSON (see <see cref="TrainingLog"/>).</param>
/// <param name="RngState">torch's default CPU generator state (uint8).</param>
/// <param name="ModelState">The model's state_dict (parameters and buffers), CPU copies.</param>
/// <param name="OptimizerState">The optimiser's state tensors (see <see cref="TrainingOptimizer.StateTensors"/>).</param>
/// <param name="ExtraState">The model's training state outside its state_dict (<see cref="ITrainableModel.GetExtraState"/>),
/// or null for none; empty when read from a version-1 file, which did not store it.</param>
public sealed record TrainingState(
    long Iteration, long OptimizerStepCount, int ConsecutiveBadSteps,
    string ConfigurationJson, string OptionsJson, string LogJson,
    Tensor RngState, IReadOnlyDictionary<string, Tensor> ModelState, IReadOnlyDictionary<string, Tensor> OptimizerState,
    IReadOnlyDictionary<string, double>? ExtraState = null) : IDisposable
{
    /// <summary><see cref="ExtraState"/>, empty instead of null.</summary>
    public IReadOnlyDictionary<string, double> ExtraStateOrEmpty => ExtraState ?? new Dictionary<string, double>();

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        RngState.Dispose();
        foreach (var t in ModelState.Values) t.Dispose();
        foreach (var t in OptimizerState.Values) t.Dispose();
    }
}

/// <summary>Reads and writes <see cref="TrainingState"/> files.</summary>
public static class TrainingCheckpoint
{
    /// <summary>The file name of a run's checkpoint inside its output folder.</summary>
    public const string FileName = "checkpoint.rstrain";

    private static readonly byte[] Magic = "RSTRAIN\n"u8.ToArray();
    // Version 2 added the model's extra state (name -> double) after the optimiser state; version 1 files still load.
    private const int Version = 2;
    private const int FirstVersionWithExtraState = 2;
    private const string EndMarker = "END";

    /// <summary>Writes <paramref name="state"/> to <paramref name="path"/> atomically.</summary>
    /// <exception cref="InvalidOperationException">A model tensor holds NaN or infinity (a checkpoint never contains them); nothing is written.</exception>
    /// <exception cref="IOException">The folder is not writable; a previous checkpoint at <paramref name="path"/> is left intact.</exception>
    public static void Save(string path, TrainingState state)
    {
        foreach (var (name, t) in state.ModelState)
            if (t.is_floating_point() && !IsFinite(t))
                throw new InvalidOperationException($"Refusing to write checkpoint '{path}': model tensor '{name}' holds NaN or infinity.");
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(Version);
            w.Write(state.Iteration);
            w.Write(state.OptimizerStepCount);
            w.Write(state.ConsecutiveBadSteps);
            w.Write(state.ConfigurationJson);
            w.Write(state.OptionsJson);
            w.Write(state.LogJson);
            WriteTensor(w, state.RngState);
            WriteDict(w, state.ModelState);
            WriteDict(w, state.OptimizerState);
            var extra = state.ExtraStateOrEmpty;
            w.Write(extra.Count);
            foreach (var (name, v) in extra)
            {
                w.Write(name);
                w.Write(v); // 8 bytes, IEEE 754 little-endian: bit-exact
            }
            w.Write(EndMarker);
        });
    }

    /// <summary>Reads a checkpoint written by <see cref="Save"/>; tensors are on the CPU.</summary>
    /// <remarks>Reads versions 1 (no extra state: <see cref="TrainingState.ExtraState"/> is empty) and 2.</remarks>
    /// <exception cref="DataFormatException">The file is missing, not a RetinaSharp training checkpoint, of an unknown version, or truncated.</exception>
    public static TrainingState Load(string path)
    {
        if (!File.Exists(path))
            throw new DataFormatException(path, null, null, "the checkpoint file does not exist");
        using var fs = File.OpenRead(path);
        using var r = new BinaryReader(fs, Encoding.UTF8);
        var created = new List<Tensor>();
        try
        {
            var magic = r.ReadBytes(Magic.Length);
            if (!magic.AsSpan().SequenceEqual(Magic))
                throw new DataFormatException(path, null, null, "not a RetinaSharp training checkpoint (bad magic bytes)");
            int version = r.ReadInt32();
            if (version < 1 || version > Version)
                throw new DataFormatException(path, null, "version", $"unsupported checkpoint version {version} (expected 1 to {Version})");
            long iteration = r.ReadInt64();
            long steps = r.ReadInt64();
            int bad = r.ReadInt32();
            string config = r.ReadString();
            string options = r.ReadString();
            string log = r.ReadString();
            var rng = ReadTensor(r, path, "rng_state");
            created.Add(rng);
            var model = ReadDict(r, path, created);
            var opt = ReadDict(r, path, created);
            var extra = new Dictionary<string, double>();
            if (version >= FirstVersionWithExtraState)
            {
                int n = r.ReadInt32();
                if (n < 0) throw new DataFormatException(path, null, "extra_state", $"negative entry count {n}");
                for (int i = 0; i < n; i++)
                {
                    string name = r.ReadString();
                    extra[name] = r.ReadDouble();
                }
            }
            if (r.ReadString() != EndMarker)
                throw new DataFormatException(path, null, null, "the checkpoint is truncated (no end marker)");
            return new TrainingState(iteration, steps, bad, config, options, log, rng, model, opt, extra);
        }
        catch (EndOfStreamException e)
        {
            foreach (var t in created) t.Dispose();
            throw new DataFormatException(path, null, null, "the checkpoint is truncated", e);
        }
        catch
        {
            foreach (var t in created) t.Dispose();
            throw;
        }
    }

    private static bool IsFinite(Tensor t)
    {
        using var scope = NewDisposeScope();
        return isfinite(t).all().item<bool>();
    }

    private static void WriteDict(BinaryWriter w, IReadOnlyDictionary<string, Tensor> d)
    {
        w.Write(d.Count);
        foreach (var (name, t) in d)
        {
            w.Write(name);
            WriteTensor(w, t);
        }
    }

    private static Dictionary<string, Tensor> ReadDict(BinaryReader r, string path, List<Tensor> created)
    {
        int n = r.ReadInt32();
        if (n < 0) throw new DataFormatException(path, null, null, $"negative tensor count {n}");
        var d = new Dictionary<string, Tensor>(n);
        for (int i = 0; i < n; i++)
        {
            string name = r.ReadString();
            var t = ReadTensor(r, path, name);
            created.Add(t);
            d[name] = t;
        }
        return d;
    }

    private static void WriteTensor(BinaryWriter w, Tensor t)
    {
        using var scope = NewDisposeScope();
        var c = t.detach().cpu().contiguous();
        w.Write((int)c.dtype);
        w.Write(c.shape.Length);
        foreach (long s in c.shape) w.Write(s);
        var bytes = c.bytes;
        w.Write((long)bytes.Length);
        w.Write(bytes);
    }

    private static Tensor ReadTensor(BinaryReader r, string path, string name)
    {
        var dtype = (ScalarType)r.ReadInt32();
        int ndim = r.ReadInt32();
        if (ndim < 0 || ndim > 16) throw new DataFormatException(path, $"tensor '{name}'", "shape", $"bad rank {ndim}");
        var shape = new long[ndim];
        for (int i = 0; i < ndim; i++) shape[i] = r.ReadInt64();
        long n = r.ReadInt64();
        if (n < 0 || n > int.MaxValue) throw new DataFormatException(path, $"tensor '{name}'", "data", $"bad byte count {n}");
        var data = r.ReadBytes((int)n);
        if (data.Length != n) throw new EndOfStreamException();
        var t = empty(shape, dtype: dtype);
        if (t.NumberOfElements * t.ElementSize != n)
        {
            t.Dispose();
            throw new DataFormatException(path, $"tensor '{name}'", "data", $"{n} bytes for shape [{string.Join(",", shape)}] of {dtype}");
        }
        t.bytes = data;
        return t.DetachFromDisposeScope();
    }
}
