// Restricted unpickler for torch.save'd state dicts (pickle protocols 2-5 opcodes that
// torch emits). Objects are a small tagged tree; only the callables a state dict needs are
// resolved, anything else is refused.
#include <cstring>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "embedder/detail/checkpoint_files.h"
#include "embedder/detail/zip_archive.h"

namespace m3vdb::embedder {
namespace {

struct Obj;
using Ref = std::shared_ptr<Obj>;

struct Obj {
  enum Kind { kNone, kBool, kInt, kFloat, kStr, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;                          // str, global "module.name", storage key
  std::vector<Ref> items;                 // tuple, list
  std::vector<std::pair<Ref, Ref>> dict;  // dict (insertion order)
  DType dtype = DType::kOther;            // storage
  std::string dtype_name;                 // storage
  TensorRef tensor;                       // tensor
};

Ref Make(Obj::Kind kind) {
  auto r = std::make_shared<Obj>();
  r->kind = kind;
  return r;
}

struct StorageType {
  const char* name;
  DType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", DType::kF32},   {"HalfStorage", DType::kF16},
    {"BFloat16Storage", DType::kBF16}, {"LongStorage", DType::kI64},
    {"DoubleStorage", DType::kOther}, {"IntStorage", DType::kOther},
    {"ShortStorage", DType::kOther},  {"CharStorage", DType::kOther},
    {"ByteStorage", DType::kOther},   {"BoolStorage", DType::kOther},
};

class Unpickler {
 public:
  Unpickler(const uint8_t* p, size_t n, const std::string& path,
            const std::map<std::string, ZipMember>& members, std::string prefix)
      : p_(p), end_(p + n), path_(path), members_(members), prefix_(std::move(prefix)) {}

  Result<Ref> Run() {
    while (true) {
      if (p_ >= end_) return Bad("truncated pickle");
      uint8_t op = *p_++;
      Status s = Step(op);
      if (!s.ok()) return s;
      if (done_) break;
    }
    if (stack_.size() != 1) return Bad("pickle did not leave exactly one object");
    return stack_.back();
  }

 private:
  Status Bad(const std::string& why) {
    return Status::Corruption(path_ + ": malformed pickle in data.pkl (" + why + ")");
  }
  bool Need(size_t n) const { return static_cast<size_t>(end_ - p_) >= n; }
  uint64_t Le(int bytes) {
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | p_[k];
    p_ += bytes;
    return v;
  }
  Result<Ref> Pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      return Bad("stack underflow");
    Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Result<std::vector<Ref>> PopToMark() {
    if (marks_.empty()) return Bad("no mark");
    size_t m = marks_.back();
    marks_.pop_back();
    if (m > stack_.size()) return Bad("bad mark");
    std::vector<Ref> items(stack_.begin() + static_cast<long>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Status PushStr(size_t len) {
    if (!Need(len)) return Bad("truncated string");
    Ref r = Make(Obj::kStr);
    r->s.assign(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    stack_.push_back(r);
    return Status::OK();
  }
  Status PushInt(int64_t v) {
    Ref r = Make(Obj::kInt);
    r->i = v;
    stack_.push_back(r);
    return Status::OK();
  }
  Status Global(const std::string& module, const std::string& name);
  Status PersistentLoad(const Ref& pid);
  Status Reduce(const Ref& callable, const Ref& args);
  Status Step(uint8_t op);

  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& path_;
  const std::map<std::string, ZipMember>& members_;
  std::string prefix_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
  bool done_ = false;
};

Status Unpickler::Global(const std::string& module, const std::string& name) {
  Ref g = Make(Obj::kGlobal);
  g->s = module + "." + name;
  bool allowed = g->s == "collections.OrderedDict" || g->s == "torch._utils._rebuild_tensor_v2" ||
                 g->s == "torch._utils._rebuild_parameter";
  if (module == "torch") {
    for (const auto& st : kStorageTypes)
      if (name == st.name) allowed = true;
  }
  if (!allowed) return Bad("refusing global " + g->s + " (not part of a tensor state dict)");
  stack_.push_back(g);
  return Status::OK();
}

Status Unpickler::PersistentLoad(const Ref& pid) {
  // ('storage', torch.<T>Storage, key, location, numel)
  if (pid->kind != Obj::kTuple || pid->items.size() < 5 || pid->items[0]->kind != Obj::kStr ||
      pid->items[0]->s != "storage" || pid->items[1]->kind != Obj::kGlobal ||
      pid->items[2]->kind != Obj::kStr || pid->items[4]->kind != Obj::kInt)
    return Bad("unexpected persistent id");
  Ref st = Make(Obj::kStorage);
  std::string type = pid->items[1]->s.substr(pid->items[1]->s.rfind('.') + 1);
  for (const auto& t : kStorageTypes)
    if (type == t.name) st->dtype = t.dtype;
  st->dtype_name = type;
  st->s = pid->items[2]->s;
  auto it = members_.find(prefix_ + "data/" + st->s);
  if (it == members_.end()) return Bad("storage " + st->s + " missing from the archive");
  if (it->second.method != 0)
    return Status::Corruption(path_ + ": storage " + st->s + " is compressed (torch stores it raw)");
  size_t elem = DTypeSize(st->dtype);
  uint64_t numel = static_cast<uint64_t>(pid->items[4]->i);
  uint64_t storage_bytes = 0;
  if (elem != 0 && (__builtin_mul_overflow(numel, elem, &storage_bytes) || storage_bytes > it->second.size))
    return Bad("storage " + st->s + " is truncated");
  st->tensor.data = it->second.data;
  st->tensor.nbytes = it->second.size;
  stack_.push_back(st);
  return Status::OK();
}

Status Unpickler::Reduce(const Ref& callable, const Ref& args) {
  if (callable->kind != Obj::kGlobal || args->kind != Obj::kTuple) return Bad("bad REDUCE");
  const auto& a = args->items;
  if (callable->s == "collections.OrderedDict") {
    stack_.push_back(Make(Obj::kDict));
    return Status::OK();
  }
  if (callable->s == "torch._utils._rebuild_parameter") {
    if (a.empty() || a[0]->kind != Obj::kTensor) return Bad("bad _rebuild_parameter");
    stack_.push_back(a[0]);
    return Status::OK();
  }
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks, ...)
  if (a.size() < 4 || a[0]->kind != Obj::kStorage || a[1]->kind != Obj::kInt ||
      a[2]->kind != Obj::kTuple || a[3]->kind != Obj::kTuple || a[2]->items.size() != a[3]->items.size())
    return Bad("bad _rebuild_tensor_v2 arguments");
  Ref t = Make(Obj::kTensor);
  const Obj& st = *a[0];
  t->tensor.dtype = st.dtype;
  t->tensor.dtype_name = st.dtype_name;
  int64_t expect = 1;
  for (size_t d = a[2]->items.size(); d-- > 0;) {
    if (a[2]->items[d]->kind != Obj::kInt || a[3]->items[d]->kind != Obj::kInt) return Bad("bad shape");
    int64_t dim = a[2]->items[d]->i;
    if (dim < 0) return Bad("negative dimension");
    if (dim > 1 && a[3]->items[d]->i != expect) return Bad("non-contiguous tensor (stride)");
    if (__builtin_mul_overflow(expect, dim, &expect)) return Bad("tensor shape overflows");
  }
  for (const auto& dim : a[2]->items) t->tensor.shape.push_back(dim->i);
  size_t elem = DTypeSize(st.dtype);
  if (elem != 0) {
    uint64_t offset = 0, bytes = 0;
    if (a[1]->i < 0 || __builtin_mul_overflow(static_cast<uint64_t>(a[1]->i), elem, &offset) ||
        __builtin_mul_overflow(static_cast<uint64_t>(expect), elem, &bytes) || offset > st.tensor.nbytes ||
        bytes > st.tensor.nbytes - offset)
      return Bad("tensor extends past its storage " + st.s);
    t->tensor.data = st.tensor.data + offset;
    t->tensor.nbytes = bytes;
  }
  stack_.push_back(t);
  return Status::OK();
}

Status Unpickler::Step(uint8_t op) {
  switch (op) {
    case 0x80: if (!Need(1)) return Bad("truncated"); ++p_; return Status::OK();          // PROTO
    case 0x95: if (!Need(8)) return Bad("truncated"); p_ += 8; return Status::OK();       // FRAME
    case '.': done_ = true; return Status::OK();                                           // STOP
    case '(': marks_.push_back(stack_.size()); return Status::OK();                        // MARK
    case 'N': stack_.push_back(Make(Obj::kNone)); return Status::OK();
    case 0x88: case 0x89: {                                                                // NEWTRUE/FALSE
      Ref r = Make(Obj::kBool);
      r->i = op == 0x88;
      stack_.push_back(r);
      return Status::OK();
    }
    case 'K': if (!Need(1)) return Bad("truncated"); return PushInt(static_cast<int64_t>(Le(1)));
    case 'M': if (!Need(2)) return Bad("truncated"); return PushInt(static_cast<int64_t>(Le(2)));
    case 'J': if (!Need(4)) return Bad("truncated"); return PushInt(static_cast<int32_t>(Le(4)));
    case 0x8a: {                                                                           // LONG1
      if (!Need(1)) return Bad("truncated");
      size_t n = Le(1);
      if (n > 8 || !Need(n)) return Bad("unsupported long");
      int64_t v = 0;
      for (size_t k = n; k-- > 0;) v = (v << 8) | p_[k];
      if (n > 0 && n < 8 && (p_[n - 1] & 0x80)) v -= int64_t{1} << (8 * n);
      p_ += n;
      return PushInt(v);
    }
    case 'G': {                                                                            // BINFLOAT
      if (!Need(8)) return Bad("truncated");
      uint64_t bits = 0;
      for (int k = 0; k < 8; ++k) bits = (bits << 8) | p_[k];
      p_ += 8;
      Ref r = Make(Obj::kFloat);
      std::memcpy(&r->f, &bits, 8);
      stack_.push_back(r);
      return Status::OK();
    }
    case 'X': if (!Need(4)) return Bad("truncated"); return PushStr(Le(4));                // BINUNICODE
    case 0x8c: if (!Need(1)) return Bad("truncated"); return PushStr(Le(1));               // SHORT_BINUNICODE
    case 'U': if (!Need(1)) return Bad("truncated"); return PushStr(Le(1));                // SHORT_BINSTRING
    case 'T': if (!Need(4)) return Bad("truncated"); return PushStr(Le(4));                // BINSTRING
    case 'C': if (!Need(1)) return Bad("truncated"); return PushStr(Le(1));                // SHORT_BINBYTES
    case 'B': if (!Need(4)) return Bad("truncated"); return PushStr(Le(4));                // BINBYTES
    case '}': stack_.push_back(Make(Obj::kDict)); return Status::OK();
    case ']': stack_.push_back(Make(Obj::kList)); return Status::OK();
    case ')': stack_.push_back(Make(Obj::kTuple)); return Status::OK();
    case 't': {
      M3VDB_ASSIGN_OR_RETURN(auto items, PopToMark());
      Ref r = Make(Obj::kTuple);
      r->items = std::move(items);
      stack_.push_back(r);
      return Status::OK();
    }
    case 0x85: case 0x86: case 0x87: {                                                     // TUPLE1..3
      size_t n = op - 0x84u;
      Ref r = Make(Obj::kTuple);
      r->items.resize(n);
      for (size_t k = n; k-- > 0;) {
        M3VDB_ASSIGN_OR_RETURN(r->items[k], Pop());
      }
      stack_.push_back(r);
      return Status::OK();
    }
    case 'c': {                                                                            // GLOBAL
      const uint8_t* nl1 = static_cast<const uint8_t*>(std::memchr(p_, '\n', end_ - p_));
      if (nl1 == nullptr) return Bad("truncated global");
      const uint8_t* nl2 = static_cast<const uint8_t*>(std::memchr(nl1 + 1, '\n', end_ - nl1 - 1));
      if (nl2 == nullptr) return Bad("truncated global");
      std::string module(reinterpret_cast<const char*>(p_), nl1 - p_);
      std::string name(reinterpret_cast<const char*>(nl1 + 1), nl2 - nl1 - 1);
      p_ = nl2 + 1;
      return Global(module, name);
    }
    case 0x93: {                                                                           // STACK_GLOBAL
      M3VDB_ASSIGN_OR_RETURN(Ref name, Pop());
      M3VDB_ASSIGN_OR_RETURN(Ref module, Pop());
      if (name->kind != Obj::kStr || module->kind != Obj::kStr) return Bad("bad STACK_GLOBAL");
      return Global(module->s, name->s);
    }
    case 'q': case 'r': case 0x94: {                                                       // BINPUT...
      if (stack_.empty()) return Bad("memo of empty stack");
      uint64_t key;
      if (op == 0x94) {
        key = memo_.size();
      } else {
        int n = op == 'q' ? 1 : 4;
        if (!Need(n)) return Bad("truncated");
        key = Le(n);
      }
      memo_[key] = stack_.back();
      return Status::OK();
    }
    case 'h': case 'j': {                                                                  // BINGET
      int n = op == 'h' ? 1 : 4;
      if (!Need(n)) return Bad("truncated");
      auto it = memo_.find(Le(n));
      if (it == memo_.end()) return Bad("memo key missing");
      stack_.push_back(it->second);
      return Status::OK();
    }
    case 'Q': {                                                                            // BINPERSID
      M3VDB_ASSIGN_OR_RETURN(Ref pid, Pop());
      return PersistentLoad(pid);
    }
    case 'R': {                                                                            // REDUCE
      M3VDB_ASSIGN_OR_RETURN(Ref args, Pop());
      M3VDB_ASSIGN_OR_RETURN(Ref callable, Pop());
      return Reduce(callable, args);
    }
    case 'b': {                                                                            // BUILD
      M3VDB_ASSIGN_OR_RETURN(Ref state, Pop());
      if (stack_.empty()) return Bad("BUILD on empty stack");
      return Status::OK();  // state (e.g. OrderedDict._metadata) carries no tensors we need
    }
    case 's': case 'u': {                                                                  // SETITEM(S)
      std::vector<Ref> items;
      if (op == 's') {
        items.resize(2);
        M3VDB_ASSIGN_OR_RETURN(items[1], Pop());
        M3VDB_ASSIGN_OR_RETURN(items[0], Pop());
      } else {
        M3VDB_ASSIGN_OR_RETURN(items, PopToMark());
      }
      if (stack_.empty() || stack_.back()->kind != Obj::kDict || items.size() % 2 != 0)
        return Bad("SETITEMS on a non-dict");
      for (size_t k = 0; k < items.size(); k += 2) stack_.back()->dict.emplace_back(items[k], items[k + 1]);
      return Status::OK();
    }
    case 'a': case 'e': {                                                                  // APPEND(S)
      std::vector<Ref> items;
      if (op == 'a') {
        items.resize(1);
        M3VDB_ASSIGN_OR_RETURN(items[0], Pop());
      } else {
        M3VDB_ASSIGN_OR_RETURN(items, PopToMark());
      }
      if (stack_.empty() || stack_.back()->kind != Obj::kList) return Bad("APPEND on a non-list");
      for (auto& it : items) stack_.back()->items.push_back(std::move(it));
      return Status::OK();
    }
    default: {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", op);
      return Bad(std::string("unsupported opcode ") + hex);
    }
  }
}

}  // namespace

Result<TensorFile> ReadTorchFile(const std::string& path) {
  TensorFile out;
  M3VDB_ASSIGN_OR_RETURN(out.file, MappedFile::Open(path));
  M3VDB_ASSIGN_OR_RETURN(auto members, ReadZipDirectory(out.file->data(), out.file->size(), path));
  std::string prefix;
  const ZipMember* pkl = nullptr;
  for (const auto& [name, member] : members) {
    if (name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0 &&
        (name.size() == 8 || name[name.size() - 9] == '/')) {
      prefix = name.substr(0, name.size() - 8);
      pkl = &member;
      break;
    }
  }
  if (pkl == nullptr) return Status::Corruption(path + ": not a torch checkpoint (no data.pkl in the archive)");
  if (pkl->method != 0) return Status::Corruption(path + ": data.pkl is compressed");
  Unpickler unpickler(pkl->data, pkl->size, path, members, prefix);
  M3VDB_ASSIGN_OR_RETURN(Ref root, unpickler.Run());
  if (root->kind != Obj::kDict) return Status::Corruption(path + ": the pickle is not a state dict");
  for (const auto& [key, value] : root->dict) {
    if (key->kind != Obj::kStr) return Status::Corruption(path + ": state dict key is not a string");
    if (value->kind != Obj::kTensor)
      return Status::Corruption(path + ": value of key '" + key->s + "' is not a tensor");
    out.tensors[key->s] = value->tensor;
  }
  return out;
}

}  // namespace m3vdb::embedder
