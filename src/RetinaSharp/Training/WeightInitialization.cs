// Starting a training run from existing weights (detectron2's MODEL.WEIGHTS / torchvision's fine-tuning
// recipe): copy every tensor whose name and shape match; when the class count differs, the classification
// layer (head.classification_head.cls_logits) keeps its fresh initialisation (prior-probability bias).
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>Copies weights from a checkpoint into a freshly built model.</summary>
public static class WeightInitialization
{
    /// <summary>Loads <paramref name="path"/> (our checkpoint or a torchvision .pth) and copies its tensors into <paramref name="model"/>.</summary>
    /// <param name="model">The model to initialise (its architecture must match except for the class count).</param>
    /// <param name="path">The checkpoint.</param>
    /// <returns>A sentence describing what was copied and what was replaced.</returns>
    /// <exception cref="IO.DataFormatException">The file is not a checkpoint, or a tensor other than the classification layer does not fit.</exception>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    public static string InitFrom(RetinaNet model, string path)
    {
        using var scope = NewDisposeScope();
        var source = RetinaNetCheckpoint.Load(path);
        var src = source.state_dict();
        var dst = model.state_dict();
        int copied = 0;
        var replaced = new List<string>();
        using (no_grad())
        {
            foreach (var (name, t) in dst)
            {
                if (!src.TryGetValue(name, out var s))
                    throw new IO.DataFormatException(path, null, name, "missing from the checkpoint: it was made for another architecture");
                if (!s.shape.SequenceEqual(t.shape))
                {
                    if (name.StartsWith("head.classification_head.cls_logits.", StringComparison.Ordinal))
                    {
                        replaced.Add(name);
                        continue;
                    }
                    throw new IO.DataFormatException(path, null, name, $"shape [{string.Join(",", s.shape)}] does not fit the model's [{string.Join(",", t.shape)}]");
                }
                t.copy_(s);
                copied++;
            }
        }
        source.Dispose();
        return replaced.Count == 0
            ? $"Initialised all {copied} tensors from {path}."
            : $"Initialised {copied} tensors from {path}; the classification layer was replaced ({source.Options.NumClasses} -> {model.Options.NumClasses} class{(model.Options.NumClasses == 1 ? "" : "es")}).";
    }
}
